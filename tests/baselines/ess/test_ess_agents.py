"""SB3 agents, the supervised baseline and the multi-agent alternation (tiny budgets; learning targets in
benchmarks/ess_learning.py, except one short PPO check)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

from msol.baselines.ess.agents import StandardizeObs, make_agent, observation_stats, predictor
from msol.baselines.ess.metrics import evaluate_defender, play_defender
from msol.baselines.ess.multiagent import alternate, build_players
from msol.baselines.ess.supervised import VisitedObservations, optimal_labels, train_supervised
from msol.envs.ess import ESSDefenderEnv
from msol.envs.ess.strategies import OptimalDefender, RandomDefender


def _agent(algo: str, net: str = "mlp", K: int = 5, potential: float = 0.95, seed: int = 0, **kwargs):
    def env_fn():
        return ESSDefenderEnv(K=K, potential=potential)

    stats = observation_stats(env_fn(), n_steps=300)
    return make_agent(algo, make_vec_env(env_fn, n_envs=2, seed=seed), net=net, obs_stats=stats, seed=seed, **kwargs)


def test_observation_stats_standardise_raw_counts():
    mean, std = observation_stats(ESSDefenderEnv(K=10, potential=0.99), n_steps=500)
    assert len(mean) == 22 and std[0] > 50 and min(std) >= 1.0  # level-0 counts reach hundreds
    extractor = StandardizeObs(ESSDefenderEnv(K=10).observation_space, mean, std)
    x = torch.as_tensor(np.asarray([mean]), dtype=torch.float32)
    assert torch.allclose(extractor(x), torch.zeros(1, 22), atol=1e-5)


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
def test_linear_and_mlp_networks(algo):
    for net, hidden_layers in (("linear", 0), ("mlp", 2)):
        model = _agent(algo, net=net)
        linears = [m for m in model.policy.modules() if isinstance(m, torch.nn.Linear)]
        widths = {m.out_features for m in linears}
        assert (300 in widths) == (hidden_layers > 0)
        actions = predictor(model)(np.zeros((7, 12), dtype=np.float32))
        assert actions.shape == (7,) and set(np.unique(actions)) <= {0, 1}


def test_bad_agent_parameters_fail_clearly():
    with pytest.raises(ValueError, match="valid: ppo, a2c, dqn"):
        _agent("sac")
    with pytest.raises(ValueError, match="valid: linear, mlp"):
        _agent("ppo", net="cnn")
    with pytest.raises(ValueError, match="valid: constant, linear"):
        _agent("ppo", lr_schedule="cosine")


@pytest.mark.learning(seed=0)
def test_short_ppo_run_beats_a_random_defender(learning_seed, learning_margin):
    torch.manual_seed(learning_seed)
    model = _agent("ppo", seed=learning_seed, kwargs={"n_steps": 50, "batch_size": 50, "n_epochs": 4, "ent_coef": 0.01})
    model.learn(4000)
    random_win = evaluate_defender(RandomDefender(), K=5, potential=0.95, n_games=2000, seed=1)["win_rate"]
    ppo_win = evaluate_defender(predictor(model), K=5, potential=0.95, n_games=2000, seed=1)["win_rate"]
    learning_margin(ppo_win - random_win, 0.1, (ppo_win, random_win))  # above a random defender (seeds 0-9: 0.26-0.94)


def test_visited_observations_and_labels():
    model = _agent("ppo", kwargs={"n_steps": 20})
    visited = VisitedObservations(max_obs=50)
    model.learn(80, callback=visited)
    obs = visited.observations
    assert obs.shape == (50, 12)  # capped; 2 envs × 20 steps × 2 rollouts + the first observations
    labels, decisive = optimal_labels(obs)
    A, B = np.split(obs, 2, axis=1)
    weights = 2.0 ** (np.arange(6) - 5)
    assert np.array_equal(decisive, A @ weights != B @ weights)
    assert np.array_equal(labels[decisive], (B @ weights > A @ weights)[decisive].astype(int))


@pytest.mark.learning(seed=0)
def test_supervised_copy_learns_the_optimal_move(learning_seed, learning_margin):
    model = _agent("ppo", seed=learning_seed)
    record = play_defender(OptimalDefender(), K=5, potential=0.95, attacker="mixture", n_games=600, seed=learning_seed)
    obs = np.concatenate([record.A, record.B], axis=-1)[record.active].astype(np.float32)
    policy, fit = train_supervised(model, obs, epochs=15, seed=learning_seed)
    assert fit["decisive_examples"] < len(obs)
    learning_margin(fit["validation_accuracy"], 0.85)
    assert policy is not model.policy
    assert torch.equal(policy.features_extractor.mean, model.policy.features_extractor.mean)
    with pytest.raises(ValueError, match="at least 2 decisive"):
        train_supervised(model, obs[:0])


def test_alternation_trains_each_side_in_turn():
    def make(env_fn, stats_env):
        return make_agent("ppo", make_vec_env(env_fn, n_envs=1, seed=0), obs_stats=observation_stats(stats_env, 100),
                          kwargs={"n_steps": 20, "batch_size": 20}, hidden=(16,))

    players = build_players(5, 0.95, make)
    seen = []
    alternate(players, phases=3, phase_frames=40, on_phase_end=lambda p, side: seen.append(
        (p, side, players["defender"].num_timesteps, players["attacker"].num_timesteps)))
    assert seen == [(0, "defender", 40, 0), (1, "attacker", 40, 40), (2, "defender", 80, 40)]
