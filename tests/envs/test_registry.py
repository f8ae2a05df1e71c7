"""Registry: every msol id is registered on `import envs`, listed, gymnasium-compliant, and configurable."""

from __future__ import annotations

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from msol import envs

REQUIRED = {
    "msol/Taxi-v0",
    "msol/Taxi8x8Moved-v0",
    "msol/Taxi10x10-v0",
    "msol/Taxi10x10Moved-v0",
    "msol/DirectionalTaxi-v0",
    "msol/MovingBandits-v0",
    "msol/DirectionalSwimmer-v0",
}


def test_list_envs_describes_every_msol_id():
    listing = envs.list_envs()
    assert REQUIRED <= set(listing)
    assert set(listing) == {i for i in gym.registry if i.startswith("msol/")}
    for env_id, description in listing.items():
        assert isinstance(description, str) and description and "\n" not in description, env_id


@pytest.mark.parametrize("env_id", sorted(envs.list_envs()))
def test_check_env_on_every_registered_env(env_id):
    env = gym.make(env_id)
    # The MuJoCo env's rendering needs a GL context; the other checks are what matter here.
    check_env(env.unwrapped, skip_render_check=env_id.endswith("Swimmer-v0"))
    env.close()


@pytest.mark.parametrize("env_id", sorted(REQUIRED - {"msol/DirectionalSwimmer-v0"}))
def test_time_limit_lives_inside_the_env(env_id):
    assert gym.spec(env_id).max_episode_steps is None
    env = gym.make(env_id, mode="test")
    env.reset(seed=0)
    # With no-ops a taxi never delivers and Moving Bandits never terminates: the 50-step limit ends the episode.
    truncated_at = next(t for t in range(1, 60) if env.step(0)[3])
    assert truncated_at == 50


@pytest.mark.parametrize(
    ("env_id", "task", "n_tasks"),
    [
        ("msol/Taxi-v0", "R-G", 12),
        ("msol/DirectionalTaxi-v0", "B-Y", 12),
        ("msol/MovingBandits-v0", "goal1", 2),
        ("msol/Taxi10x10Moved-v0", "Y-R", 12),
        ("msol/DirectionalSwimmer-v0", "left", 4),
    ],
)
def test_make_selects_task_and_mode(env_id, task, n_tasks):
    env = gym.make(env_id, task=task, mode="test")
    env.reset(seed=0)
    assert env.unwrapped.task == task and len(env.unwrapped.tasks) == n_tasks
    with pytest.raises(ValueError, match="valid tasks"):
        gym.make(env_id, task="no-such-task")
    env.close()


def test_unknown_id_is_an_error():
    with pytest.raises(gym.error.Error):
        gym.make("msol/Taxi-v9")


def test_register_env_rejects_foreign_namespace():
    with pytest.raises(ValueError, match="msol/"):
        envs.register_env("Other-v0", "msol.envs.taxi:TaxiEnv", "x")


BATCHED = sorted(i for i in REQUIRED if i != "msol/DirectionalSwimmer-v0")


@pytest.mark.parametrize("env_id", BATCHED)
def test_make_vec_returns_the_numpy_batched_env_with_the_same_trajectories(env_id):
    import numpy as np

    from msol.envs.vector import MultitaskVectorEnv, make_multitask_vector_env

    vec = gym.make_vec(env_id, num_envs=3, mode="test")  # the registered vector_entry_point is the default mode
    assert isinstance(vec, MultitaskVectorEnv) and vec.num_envs == 3
    same = make_multitask_vector_env(env_id, [None] * 3, envs_per_slot=1, mode="test")
    rng = np.random.default_rng(0)
    obs, _ = vec.reset(seed=5)
    np.testing.assert_array_equal(obs, same.reset(seed=5)[0])
    for _ in range(60):  # past the 50-step limit: autoresets included
        actions = rng.integers(0, vec.single_action_space.n, size=3)
        for got, want in zip(vec.step(actions)[:4], same.step(actions)[:4], strict=True):
            np.testing.assert_array_equal(got, want)
    assert type(gym.make_vec(env_id, num_envs=2, vectorization_mode="sync")).__name__ == "SyncVectorEnv"


def test_module_prefixed_ids_work_without_importing_msol_first():
    import subprocess
    import sys

    code = ("import gymnasium\n"
            "env = gymnasium.make('msol.envs:msol/Taxi-v0', task='R-G')\n"
            "vec = gymnasium.make_vec('msol.envs:msol/MovingBandits-v0', num_envs=4, task='goal1')\n"
            "print(type(env.unwrapped).__name__, type(vec).__name__, vec.num_envs)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["TaxiEnv", "MultitaskVectorEnv", "4"]
