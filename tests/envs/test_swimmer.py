"""Directional Swimmer: reward along the task direction, hidden task, action noise, task switching."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from msol.envs.swimmer import DirectionalSwimmerEnv


def _rollout(env: gym.Env, actions: np.ndarray, seed: int) -> tuple[np.ndarray, list[dict]]:
    env.reset(seed=seed)
    rewards, infos = [], []
    for action in actions:
        _, reward, _, _, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
    return np.array(rewards), infos


def test_passes_gymnasium_env_checker():
    check_env(DirectionalSwimmerEnv(task="left"), skip_render_check=True)
    check_env(DirectionalSwimmerEnv(), skip_render_check=True)


@pytest.mark.parametrize("bad", [{"task": "north"}, {"mode": "eval"}, {"action_noise_std": -0.1}])
def test_bad_arguments_name_the_valid_values(bad):
    with pytest.raises(ValueError) as excinfo:
        DirectionalSwimmerEnv(**bad)
    message = str(excinfo.value)
    assert repr(next(iter(bad.values()))) in message
    if "task" in bad:
        assert all(task in message for task in ("up", "down", "left", "right"))


def test_set_task_rejects_unknown_task():
    env = DirectionalSwimmerEnv()
    with pytest.raises(ValueError, match="up, down, left, right"):
        env.set_task("diagonal")


def test_right_task_without_noise_is_gymnasium_swimmer():
    actions = np.random.default_rng(0).uniform(-1, 1, size=(50, 2))
    ours, _ = _rollout(DirectionalSwimmerEnv(task="right", action_noise_std=0.0), actions, seed=3)
    reference, _ = _rollout(gym.make("Swimmer-v5").unwrapped, actions, seed=3)
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("task,direction", [("up", (0, 1)), ("down", (0, -1)), ("left", (-1, 0)), ("right", (1, 0))])
def test_reward_is_velocity_along_direction_minus_control_cost(task, direction):
    env = DirectionalSwimmerEnv(task=task, action_noise_std=0.0)
    actions = np.random.default_rng(1).uniform(-1, 1, size=(30, 2))
    rewards, infos = _rollout(env, actions, seed=0)
    expected = [
        direction[0] * info["x_velocity"] + direction[1] * info["y_velocity"] - 1e-4 * float(a @ a)
        for info, a in zip(infos, actions)
    ]
    np.testing.assert_allclose(rewards, expected, rtol=1e-10, atol=1e-12)
    assert all(info["task"] == task for info in infos)
    assert np.std(rewards) > 1e-3  # the swimmer actually moves, so the check above is not vacuous


def test_observation_hides_position_and_task():
    env = DirectionalSwimmerEnv(task="up", action_noise_std=0.0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (8,)
    np.testing.assert_array_equal(obs, np.concatenate([env.data.qpos[2:], env.data.qvel]))
    # Same seed, same actions, different task: identical observations (the task is not observed).
    other = DirectionalSwimmerEnv(task="down", action_noise_std=0.0)
    other_obs, _ = other.reset(seed=0)
    for action in np.random.default_rng(2).uniform(-1, 1, size=(10, 2)):
        obs, *_ = env.step(action)
        other_obs, *_ = other.step(action)
    np.testing.assert_array_equal(obs, other_obs)


def test_action_noise_has_the_requested_scale_and_control_cost_uses_commanded_action():
    env = DirectionalSwimmerEnv(task="up", action_noise_std=0.1)
    env.reset(seed=0)
    applied = []
    for _ in range(1000):
        _, _, _, _, info = env.step(np.zeros(2))
        applied.append(env.data.ctrl.copy())
        assert info["reward_ctrl"] == 0.0
    applied = np.array(applied)
    assert abs(applied.mean()) < 0.01
    assert 0.09 < applied.std() < 0.11


def test_set_task_applies_at_next_reset():
    env = DirectionalSwimmerEnv(task="up")
    env.reset(seed=0)
    env.set_task("left")
    assert env.step(env.action_space.sample())[4]["task"] == "up"
    _, info = env.reset()
    assert info["task"] == "left" and env.task == "left"


def test_random_task_is_uniform_and_reproducible_from_the_seed():
    env = DirectionalSwimmerEnv()
    drawn = [env.reset(seed=s)[1]["task"] for s in range(200)]
    again = [env.reset(seed=s)[1]["task"] for s in range(200)]
    assert drawn == again
    counts = np.array([drawn.count(t) for t in env.tasks])
    assert counts.min() > 30  # 50 expected each


def test_registered_env_has_1000_step_episodes():
    from msol import envs  # noqa: F401  (registers msol/* ids once the registry exists)

    if "msol/DirectionalSwimmer-v0" not in gym.registry:
        pytest.skip("msol/DirectionalSwimmer-v0 is not registered yet (envs/__init__.py)")
    env = gym.make("msol/DirectionalSwimmer-v0", task="up")
    assert env.spec.max_episode_steps == 1000
    assert isinstance(env.unwrapped, DirectionalSwimmerEnv)
