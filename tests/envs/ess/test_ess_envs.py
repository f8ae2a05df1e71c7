"""The gymnasium environments (both sides) and the PettingZoo two-player game."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test

from msol.envs.ess import (
    ATTACKER_ID,
    DEFENDER_ID,
    ESSAttackerEnv,
    ESSDefenderEnv,
    ESSTwoPlayerEnv,
    game,
    register_ess,
    two_player_env,
)


def _optimal_defender_action(obs: np.ndarray) -> int:
    A, B = np.split(obs.astype(np.int64), 2)
    return int(game.optimal_defender_action(A, B))


def _play(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    return total, steps


@pytest.mark.parametrize("K", [3, 5, 10, 20])
def test_environments_pass_check_env(K):
    check_env(ESSDefenderEnv(K=K, potential=0.95), skip_render_check=False)
    check_env(ESSAttackerEnv(K=K, potential=1.1), skip_render_check=False)


def test_registered_ids_take_K_and_potential():
    register_ess()
    register_ess()  # idempotent
    env = gym.make(DEFENDER_ID, K=7, potential=0.9, attacker="disjoint_support")
    assert env.observation_space.shape == (16,) and env.action_space.n == 2
    env = gym.make(ATTACKER_ID, K=7, potential=1.2, defender="random")
    assert env.observation_space.shape == (8,) and env.action_space.n == 7


@pytest.mark.parametrize("attacker", ["mixture", "optimal", "disjoint_support", "random_level"])
def test_optimal_defender_always_wins_below_potential_one(attacker):
    env = ESSDefenderEnv(K=8, potential=0.99, attacker=attacker)
    for seed in range(30):
        reward, steps = _play(env, _optimal_defender_action, seed)
        assert reward == 1.0 and steps <= 8


def test_defender_loses_games_by_playing_badly():
    env = ESSDefenderEnv(K=8, potential=0.99)
    results = [_play(env, lambda obs: 1 - _optimal_defender_action(obs), seed)[0] for seed in range(20)]
    assert min(results) == -1.0


@pytest.mark.parametrize("defender", ["optimal", "random"])
def test_theorem3_attacker_wins_from_potential_above_one(defender):
    env = ESSAttackerEnv(K=8, potential=1.1, defender=defender)
    policy = lambda obs: int(game.optimal_split_level(obs.astype(np.int64)[None])[0])
    for seed in range(30):
        assert _play(env, policy, seed)[0] == 1.0


def test_start_state_option_and_seeding():
    env = ESSDefenderEnv(K=4, potential=0.9, attacker="optimal")
    obs, info = env.reset(options={"start_state": [2, 1, 1, 0, 0]})
    assert obs.reshape(2, 5).sum(axis=0).tolist() == [2, 1, 1, 0, 0]
    assert info["potential"] == pytest.approx(2 / 16 + 1 / 8 + 1 / 4)
    with pytest.raises(ValueError, match="unfinished board"):
        env.reset(options={"start_state": [0, 0, 0, 0, 1]})
    first = [env.reset(seed=11)[0] for _ in range(2)]
    assert np.array_equal(first[0], first[1])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ESSDefenderEnv(K=0), "K=0 is not a valid number of levels"),
        (lambda: ESSDefenderEnv(K=30, potential=0.99), "too large for the start-state sampler"),
        (lambda: ESSDefenderEnv(potential=-0.5), "must be a finite number > 0"),
        (lambda: ESSDefenderEnv(attacker="sneaky"), "valid: optimal, disjoint_support"),
        (lambda: ESSAttackerEnv(defender="sleepy"), "valid: optimal, random"),
        (lambda: ESSAttackerEnv(geo_ps=[0.0]), "geo_ps"),
        (lambda: ESSTwoPlayerEnv(K=1), "K=1 is too small"),
    ],
)
def test_bad_parameters_fail_clearly(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_actions_fail_clearly():
    env = ESSAttackerEnv(K=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="split level in \\[0, 4\\]"):
        env.step(5)
    env = ESSDefenderEnv(K=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="0 \\(destroy A\\) or 1"):
        env.step(2)


def test_two_player_env_passes_pettingzoo_api_test():
    api_test(two_player_env(K=6, potential=0.9), num_cycles=300)


def test_two_player_game_is_zero_sum_and_follows_theory():
    """Both players optimal: the side Theorem 2 favours wins, +1 / -1, rewards read through ``last()``."""
    for potential, winner in ((0.95, "defender"), (1.1, "attacker")):
        env = two_player_env(K=6, potential=potential)
        env.reset(seed=3)
        rewards = {"attacker": 0.0, "defender": 0.0}
        while env.agents:
            agent = env.agent_selection
            obs, reward, terminated, truncated, _ = env.last()
            rewards[agent] += reward
            if terminated or truncated:
                env.step(None)
                continue
            if agent == "attacker":
                env.step(int(game.optimal_split_level(obs.astype(np.int64)[None])[0]))
            else:
                env.step(_optimal_defender_action(obs))
        loser = "attacker" if winner == "defender" else "defender"
        assert rewards == {winner: 1.0, loser: -1.0}
