"""Moving Bandits against the spec: start, moves without clipping, reward radius, time limit, observation."""

from __future__ import annotations

import numpy as np
import pytest

from msol.envs.moving_bandits import MovingBanditsCore, MovingBanditsEnv


def test_reset_observation_and_goal_distribution():
    env = MovingBanditsEnv(task="goal0")
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (6,) and obs in env.observation_space
    np.testing.assert_allclose(obs[:2], [0.5, 0.5])
    assert info["task"] == "goal0" and env.tasks == ("goal0", "goal1")
    core = MovingBanditsCore(20_000)
    core.reset(seed=0)
    goals = core.goals.reshape(-1, 2)
    assert goals.min() >= 0 and goals.max() < 400
    # Uniform on [0, 400]: mean 200, sd 400 / sqrt(12); the coordinates are uncorrelated.
    assert abs(goals.mean() - 200) < 2 and abs(goals.std() - 400 / np.sqrt(12)) < 2
    assert abs(np.corrcoef(core.goals[:, 0, 0], core.goals[:, 1, 0])[0, 1]) < 0.03


@pytest.mark.parametrize(
    ("action", "delta"), [(0, (0, 0)), (1, (20, 0)), (2, (-20, 0)), (3, (0, 20)), (4, (0, -20))]
)
def test_moves_are_unclipped(action, delta):
    env = MovingBanditsEnv(task="goal1")
    env.reset(seed=0)
    for _ in range(15):  # 300 units: leaves the arena for every non-zero move
        obs, *_ = env.step(action)
    np.testing.assert_allclose(obs[:2] * 400, np.array([200, 200]) + 15 * np.array(delta), atol=1e-3)
    assert obs in env.observation_space


def test_reward_only_strictly_within_50_of_the_correct_goal():
    env = MovingBanditsEnv(task="goal0")
    env.reset(seed=0)
    env.core.goals[0] = [[240.0, 200.0], [160.0, 200.0]]  # goal0 40 east, goal1 40 west
    rewards = [env.step(a)[1] for a in (0, 2, 2, 1, 1, 1, 1, 1, 1, 1)]
    # x after each step: 200 (40 from goal0), 180 (60), 160 (80), 180 (60), 200, 220, 240, 260, 280 (40),
    # 300 (60). Being 40 from goal1 at x=160 earns nothing: goal1 is not the task.
    assert rewards == [1, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    env.core.goals[0] = [[200.0, 250.0], [0.0, 0.0]]
    assert env.step(0)[1] == 0  # still at x=300
    env.core.position[0] = [200.0, 200.0]
    assert env.step(0)[1] == 0  # exactly 50 away is outside: strictly within, as in the authors' and MLSH's code
    env.core.goals[0] = [[200.0, 249.9], [0.0, 0.0]]
    assert env.step(0)[1] == 1


def test_never_terminates_truncates_at_50():
    env = MovingBanditsEnv()
    env.reset(seed=0)
    for t in range(1, 51):
        _, _, term, trunc, _ = env.step(1)
        assert not term and trunc == (t == 50)


def test_task_draw_and_bad_input():
    tasks = {MovingBanditsEnv().reset(seed=s)[1]["task"] for s in range(30)}
    assert tasks == {"goal0", "goal1"}
    with pytest.raises(ValueError, match="valid tasks: goal0, goal1"):
        MovingBanditsEnv(task="goal2")
    env = MovingBanditsEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="valid actions"):
        env.step(5)


def test_option_probe_is_found_by_id_and_follows_each_option_with_the_envs_moves():
    from msol.envs.registry import option_probe

    probe = option_probe("msol/MovingBandits-v0")
    assert probe is not None and option_probe("msol/Taxi-v0") is None
    # option 0 always moves x+20 (action 1), option 1 always y-20 (action 4)
    paths, goals = probe.follow_options(lambda obs, option: np.where(option == 0, 1, 4), 2, layouts=5, steps=3)
    assert paths.shape == (2, 5, 4, 2) and goals.shape == (5, 2, 2)
    np.testing.assert_allclose(paths[0, :, -1], [[260.0, 200.0]] * 5)
    np.testing.assert_allclose(paths[1, :, -1], [[200.0, 140.0]] * 5)
    nearest, distance = probe.nearest_goal(np.array([[0.0, 0.0], [390.0, 390.0]]),
                                           np.array([[[3.0, 4.0], [400.0, 400.0]]] * 2))
    assert nearest.tolist() == [0, 1] and distance.tolist() == pytest.approx([5.0, 200 ** 0.5])
