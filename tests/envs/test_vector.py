"""MultitaskVectorEnv: batch == single trajectories, same-step autoreset, statistics, slots, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from msol import envs
from msol.envs import make_multitask_vector_env

CASES = [
    ("msol/Taxi-v0", ["R-G", "Y-B", None], "train"),
    ("msol/Taxi10x10Moved-v0", ["G-R", None], "test"),
    ("msol/DirectionalTaxi-v0", ["B-R", None], "train"),
    ("msol/MovingBandits-v0", ["goal0", "goal1", None], "train"),
]


def run_vector(vec, actions):
    """Per step: (obs, reward, terminated, truncated, final_obs or obs) as arrays over envs."""
    out = []
    for a in actions:
        obs, reward, term, trunc, infos = vec.step(a)
        out.append((obs, reward, term, trunc, infos.get("final_obs", obs), infos["task"]))
    return out


@pytest.mark.parametrize(("env_id", "tasks", "mode"), CASES)
def test_batch_reproduces_single_envs(env_id, tasks, mode):
    envs_per_slot, seed, steps = 2, 11, 130  # several episodes per env, incl. truncations at 50
    vec = make_multitask_vector_env(env_id, tasks, envs_per_slot, mode=mode, seed=seed)
    obs0, info0 = vec.reset()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, vec.single_action_space.n, (steps, vec.num_envs))
    batch = run_vector(vec, actions)
    for e in range(vec.num_envs):
        single = gym.make(env_id, task=tasks[e // envs_per_slot], mode=mode)
        obs, info = single.reset(seed=seed + e)
        np.testing.assert_array_equal(obs, obs0[e])
        assert single.unwrapped.tasks.index(info["task"]) == info0["task"][e]
        for t in range(steps):
            task = single.unwrapped.tasks.index(single.unwrapped.task)
            obs, reward, term, trunc, _ = single.step(int(actions[t, e]))
            b_obs, b_rew, b_term, b_trunc, b_final, b_task = (x[e] for x in batch[t])
            np.testing.assert_array_equal(obs, b_final)
            assert (reward, term, trunc, task) == (b_rew, b_term, b_trunc, b_task)
            if term or trunc:
                obs, _ = single.reset()
            np.testing.assert_array_equal(obs, b_obs)


def test_numpy_backend_matches_gymnasium_sync_vector_env():
    """The numpy core against gymnasium's SyncVectorEnv over the single envs, through the same class."""
    kwargs = {"tasks": ["R-B", "G-Y"], "envs_per_slot": 3, "seed": 5}
    fast = make_multitask_vector_env("msol/Taxi-v0", vectorization_mode="numpy", **kwargs)
    slow = make_multitask_vector_env("msol/Taxi-v0", vectorization_mode="sync", **kwargs)
    for v in (fast, slow):
        v.reset()
    actions = np.random.default_rng(1).integers(0, 6, (80, fast.num_envs))
    for a, b in zip(run_vector(fast, actions), run_vector(slow, actions), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    slow.close()


def test_same_step_autoreset_and_episode_statistics():
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 4, mode="test", seed=0)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    vec.reset()
    for _ in range(49):
        obs, _, term, trunc, infos = vec.step(np.zeros(4, dtype=np.int64))
        assert not (term | trunc).any() and "final_obs" not in infos and "episode" not in infos
    last_obs = obs
    obs, _, term, trunc, infos = vec.step(np.zeros(4, dtype=np.int64))
    assert trunc.all() and not term.any()
    np.testing.assert_array_equal(infos["final_obs"], last_obs)  # no-ops: the last obs is unchanged
    assert infos["_final_obs"].all() and infos["_episode"].all()
    np.testing.assert_allclose(infos["episode"]["r"], -5.0)
    np.testing.assert_array_equal(infos["episode"]["l"], 50)
    assert (infos["episode"]["t"] >= 0).all()
    assert not np.array_equal(obs, last_obs)  # reset observations (seeded starts differ)
    assert np.array_equal(vec.core.elapsed, np.zeros(4))


def test_partial_done_masks_and_dense_final_obs():
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 2, mode="test", seed=0)
    vec.reset()
    vec.core.state[0] = vec.core.encode(0, 1, vec.core.map.cell(6, 1))  # env 0 at G with the passenger
    obs, _, term, _, infos = vec.step(np.array([5, 0]))
    np.testing.assert_array_equal(term, [True, False])
    np.testing.assert_array_equal(infos["_final_obs"], [True, False])
    np.testing.assert_array_equal(infos["_episode"], [True, False])
    assert infos["episode"]["r"][0] == pytest.approx(2.0) and infos["episode"]["l"][0] == 1
    assert infos["episode"]["r"][1] == 0 and infos["episode"]["l"][1] == 0
    np.testing.assert_array_equal(infos["final_obs"][1], obs[1])  # rows of running envs: the returned obs
    assert infos["final_obs"][0].argmax() == 36 * 0 + (1 - 1) * 6 + (6 - 1)  # delivered: at G, passenger gone
    assert infos["final_obs"].dtype == np.float32
    # The next episode's statistics start from zero.
    _, reward2, *_ = vec.step(np.array([0, 0]))
    assert vec._returns[0] == pytest.approx(reward2[0])


def test_slots_tasks_and_reassignment():
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G", "G-R", "B-Y"], 2, mode="test", seed=0)
    assert vec.num_envs == 6 and vec.num_slots == 3 and vec.envs_per_slot == 2
    np.testing.assert_array_equal(vec.slot_of_env, [0, 0, 1, 1, 2, 2])
    _, info = vec.reset()
    names = [vec.tasks[t] for t in vec.task_of_env]
    assert names == ["R-G", "R-G", "G-R", "G-R", "B-Y", "B-Y"]
    np.testing.assert_array_equal(info["task"], vec.task_of_env)
    np.testing.assert_array_equal(vec.slot_tasks, [vec.tasks.index(t) for t in ("R-G", "G-R", "B-Y")])

    vec.set_slot_task(1, "Y-B")
    assert vec.slot_tasks[1] == vec.tasks.index("Y-B")
    assert vec.tasks[vec.task_of_env[2]] == "G-R"  # not before the next reset
    for _ in range(50):  # every env truncates at step 50 and autoresets
        _, _, _, trunc, infos = vec.step(np.zeros(6, dtype=np.int64))
    assert trunc.all()
    assert vec.tasks[infos["task"][2]] == "G-R"  # the finished episode's task ...
    assert vec.tasks[vec.task_of_env[2]] == "Y-B"  # ... and the new episode's

    vec.set_slot_task(2, "R-Y")
    obs, info = vec.reset_slots(2)
    assert [vec.tasks[t] for t in vec.task_of_env[4:]] == ["R-Y", "R-Y"]
    assert vec.tasks[vec.task_of_env[0]] == "R-G" and obs.shape == (6, 72)


def test_random_task_slot():
    vec = make_multitask_vector_env("msol/MovingBandits-v0", [None], 64, seed=0)
    vec.reset()
    assert vec.slot_tasks[0] == -1
    assert set(vec.task_of_env) == {0, 1}


def test_reset_mask_resets_only_selected_envs():
    vec = make_multitask_vector_env("msol/MovingBandits-v0", ["goal0"], 4, seed=0)
    obs, _ = vec.reset()
    obs, *_ = vec.step(np.ones(4, dtype=np.int64))
    mask = np.array([True, False, True, False])
    obs2, _ = vec.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs2[~mask], obs[~mask])
    np.testing.assert_allclose(obs2[mask, :2], 0.5)
    np.testing.assert_array_equal(vec.core.elapsed, [0, 1, 0, 1])


def test_seeded_reset_is_reproducible_and_seed_lists_work():
    a = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 3, mode="train", seed=None)
    b = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 3, mode="train", seed=None)
    np.testing.assert_array_equal(a.reset(seed=4)[0], b.reset(seed=[4, 5, 6])[0])
    assert not np.array_equal(a.reset(seed=4)[0], a.reset(seed=40)[0])


def test_returned_arrays_are_never_overwritten():
    """Observation buffers are recycled only when nobody holds them: kept arrays and views stay intact."""
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G", "G-R"], 8, seed=0)
    kept, copies = [], []
    obs, _ = vec.reset()
    view = obs[2:5]
    view_copy = view.copy()
    rng = np.random.default_rng(0)
    for _ in range(40):
        obs, *_, infos = vec.step(rng.integers(0, 6, 16))
        kept.append(obs)
        copies.append(obs.copy())
        if "final_obs" in infos:
            kept.append(infos["final_obs"])
            copies.append(infos["final_obs"].copy())
    for array, copy in zip(kept, copies, strict=True):
        np.testing.assert_array_equal(array, copy)
    np.testing.assert_array_equal(view, view_copy)
    assert len({id(a) for a in kept}) == len(kept)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.array([0, 6]), "out of range"),
        (np.array([0, -1]), "out of range"),
        (np.zeros(3, dtype=int), "shape"),
        (np.zeros(2), "integers"),
    ],
)
def test_bad_actions_raise(actions, message):
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 2)
    vec.reset()
    with pytest.raises(ValueError, match=message):
        vec.step(actions)


def test_step_before_reset_raises():
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 2)
    with pytest.raises(RuntimeError, match="before reset"):
        vec.step(np.zeros(2, dtype=int))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_multitask_vector_env("msol/Nope-v0", ["R-G"], 1), "msol/Taxi-v0"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", ["R-X"], 1), "valid tasks"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", [], 1), "non-empty"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", "R-G", 1), "non-empty sequence"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 0), "envs_per_slot"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 1, mode="eval"), "valid modes"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 1, colour=3), "unknown env_kwargs"),
        (lambda: make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 1, task="R-G"), "tasks"),
        (
            lambda: make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 1, vectorization_mode="gpu"),
            "valid: auto",
        ),
        (
            lambda: make_multitask_vector_env(
                "msol/DirectionalSwimmer-v0", ["up"], 1, vectorization_mode="numpy"
            ),
            "no numpy core",
        ),
    ],
)
def test_factory_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_slot_errors():
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G"], 2)
    with pytest.raises(ValueError, match="valid slots: 0..0"):
        vec.set_slot_task(1, "R-G")
    with pytest.raises(ValueError, match="valid tasks"):
        vec.set_slot_task(0, "Q-Z")
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.zeros(2, dtype=bool)})


def test_family_parameters_pass_through():
    vec = make_multitask_vector_env("msol/DirectionalTaxi-v0", ["R-G"], 2, grid="10x10")
    obs, _ = vec.reset()
    assert obs.shape == (2, 4 * 2 * 64)
    assert vec.core.map.name == "10x10"


def test_swimmer_through_the_gymnasium_backend():
    vec = make_multitask_vector_env("msol/DirectionalSwimmer-v0", ["up", "left"], 1, seed=0)
    assert isinstance(vec.core, envs.vector.GymVectorCore)
    obs, info = vec.reset()
    assert [vec.tasks[t] for t in info["task"]] == ["up", "left"]
    vec.set_slot_task(0, "down")
    vec.reset_slots(0)
    assert [vec.tasks[t] for t in vec.task_of_env] == ["down", "left"]
    obs, reward, *_, infos = vec.step(np.zeros((2, 2)))
    assert obs.shape == (2, 8) and reward.dtype == np.float64 and "x_velocity" in infos
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((3, 2)))
    vec.close()


def test_async_backend_runs():
    vec = make_multitask_vector_env("msol/Taxi-v0", ["R-G", "G-R"], 1, seed=0, vectorization_mode="async")
    sync = make_multitask_vector_env("msol/Taxi-v0", ["R-G", "G-R"], 1, seed=0)
    np.testing.assert_array_equal(vec.reset()[0], sync.reset()[0])
    actions = np.random.default_rng(0).integers(0, 6, (60, 2))
    for a, b in zip(run_vector(vec, actions), run_vector(sync, actions), strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    vec.close()
