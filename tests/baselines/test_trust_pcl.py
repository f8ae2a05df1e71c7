"""Trust-PCL core: consistency error, the soft optimum of a tiny MDP, λ by bisection, recency replay, the (τ+λ) trap."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from msol.baselines.trust_pcl import TrustPCL, TrustPCLConfig, TrustPCLTrainer
from msol.baselines.trust_pcl.collector import SubEpisodeCollector
from msol.baselines.trust_pcl.consistency import consistency_error
from msol.baselines.trust_pcl.lagrange import solve_lambda, tilted_kl
from msol.baselines.trust_pcl.replay import SubEpisode, SubEpisodeReplay

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------- consistency error by hand
def _hand_example(lengths, terminated):
    # d = 2, γ = 0.9, τ = 0.1, λ = 2 → soft reward x_j = r_j − 2.1 ln π(a_j|s_j) + 2 ln π̃(a_j|s_j)
    return consistency_error(
        rewards=torch.tensor([[1.0, 2.0, 3.0]]),
        log_pi=torch.tensor([[-0.5, -1.0, -0.2]]),
        log_prior=torch.tensor([[-0.7, -0.4, -1.5]]),
        values=torch.tensor([[10.0, 20.0, 30.0]]),
        target_values=torch.tensor([[11.0, 21.0, 31.0, 41.0]]),
        mask=(torch.arange(3) < lengths).float().unsqueeze(0),
        lengths=torch.tensor([lengths]),
        terminated=torch.tensor([terminated]),
        gamma=0.9, tau=0.1, lam=2.0, rollout=2,
    )[0]


def test_consistency_error_matches_hand_computation():
    # x = [1 + 1.05 − 1.4, 2 + 2.1 − 0.8, 3 + 0.42 − 3.0] = [0.65, 3.3, 0.42]
    # C_0 = −10 + 0.81·31 + 0.65 + 0.9·3.3 = 18.73;  C_1 = −20 + 0.81·41 + 3.3 + 0.9·0.42 = 16.888
    # C_2 = −30 + 0.9·41 + 0.42 = 7.32 (window truncated at the sub-episode end, bootstrapped with V̄(s_3))
    np.testing.assert_allclose(_hand_example(3, False).numpy(), [18.73, 16.888, 7.32], rtol=1e-5)


def test_consistency_error_terminal_state_has_zero_value():
    # s_3 terminal: V̄(s_3) → 0. C_1 = −20 + 3.678 = −16.322, C_2 = −30 + 0.42 = −29.58; C_0 ends at s_2: unchanged.
    np.testing.assert_allclose(_hand_example(3, True).numpy(), [18.73, -16.322, -29.58], rtol=1e-5)


def test_consistency_error_short_sub_episode_is_masked_and_bootstraps_at_its_end():
    # T = 2: C_1 = −20 + 0.9·V̄(s_2) + x_1 = −20 + 27.9 + 3.3 = 11.2; the padded step gives 0.
    np.testing.assert_allclose(_hand_example(2, False).numpy(), [18.73, 11.2, 0.0], rtol=1e-5)


# ------------------------------------------------------- a tiny deterministic MDP with a closed-form optimum
# s0 --a0 (r=0)--> s1 --a0 r=1 | a1 r=0--> end;   s0 --a1 (r=0.5)--> s2 --a0 r=0.2 | a1 r=0.3--> end
NEXT = {(0, 0): (1, 0.0), (0, 1): (2, 0.5), (1, 0): (None, 1.0), (1, 1): (None, 0.0),
        (2, 0): (None, 0.2), (2, 1): (None, 0.3)}
PATHS = [(0, a0, s1, a1) for a0, s1 in ((0, 1), (1, 2)) for a1 in (0, 1)]
EYE = torch.eye(3)


class TwoStepMDP(gym.Env):
    observation_space = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def _obs(self) -> np.ndarray:
        return EYE[self.state].numpy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = 0
        return self._obs(), {}

    def step(self, action):
        next_state, reward = NEXT[(self.state, int(action))]
        if next_state is None:
            return self._obs(), reward, True, False, {}
        self.state = next_state
        return self._obs(), reward, False, False, {}


def soft_optimum(prior: dict[int, np.ndarray], tau: float, lam: float, gamma: float):
    """π*(a|s) ∝ π̃(a|s)^{λ/(τ+λ)} exp(Q*(s,a)/(τ+λ)), V*(s) = (τ+λ) ln Σ_a of the same (paper §4.1), backwards."""
    pi, value = {}, {}
    for s in (1, 2, 0):
        q = np.array([r + (gamma * value[n] if n is not None else 0.0) for n, r in (NEXT[(s, a)] for a in (0, 1))])
        logits = lam / (tau + lam) * np.log(prior[s]) + q / (tau + lam)
        value[s] = (tau + lam) * float(np.logaddexp.reduce(logits))
        pi[s] = np.exp(logits - value[s] / (tau + lam))
    return pi, value


def _path_consistency(pi, prior, value, tau, lam, gamma):
    """C of every 2-step path of the MDP (d = 2) from tabular π, π̃, V."""
    rewards, log_pi, log_prior = [], [], []
    for s0, a0, s1, a1 in PATHS:
        rewards.append([NEXT[(s0, a0)][1], NEXT[(s1, a1)][1]])
        log_pi.append([math.log(pi[s0][a0]), math.log(pi[s1][a1])])
        log_prior.append([math.log(prior[s0][a0]), math.log(prior[s1][a1])])
    values = [[value[0], value[s1]] for _, _, s1, _ in PATHS]
    n = len(PATHS)
    return consistency_error(
        torch.tensor(rewards, dtype=torch.float64), torch.tensor(log_pi, dtype=torch.float64),
        torch.tensor(log_prior, dtype=torch.float64), torch.tensor(values, dtype=torch.float64),
        torch.zeros(n, 3, dtype=torch.float64), torch.ones(n, 2, dtype=torch.float64),
        torch.full((n,), 2), torch.ones(n, dtype=torch.bool), gamma=gamma, tau=tau, lam=lam, rollout=2)


def test_soft_optimum_has_zero_consistency_error_and_others_do_not():
    prior = {0: np.array([0.3, 0.7]), 1: np.array([0.6, 0.4]), 2: np.array([0.5, 0.5])}
    pi, value = soft_optimum(prior, tau=0.2, lam=0.5, gamma=0.9)
    assert _path_consistency(pi, prior, value, 0.2, 0.5, 0.9).abs().max() < 1e-12
    wrong_pi = {**pi, 0: np.array([0.5, 0.5])}
    assert _path_consistency(wrong_pi, prior, value, 0.2, 0.5, 0.9).abs().max() > 1e-2
    wrong_value = {**value, 1: value[1] + 0.1}
    assert _path_consistency(pi, prior, wrong_value, 0.2, 0.5, 0.9).abs().max() > 1e-2


def _tabular(trainer: TrustPCLTrainer, module) -> dict[int, np.ndarray]:
    with torch.no_grad():
        return {s: module.distribution(EYE[s]).probs.double().numpy() for s in range(3)}


def _mdp_config(prior_lag: float) -> TrustPCLConfig:
    return TrustPCLConfig(rollout=2, max_divergence=None, lambda_init=0.5, tau=0.2, gamma=0.9, lr=3e-3,
                          batch_size=32, collect_steps=2, replay_size=500, recency=0.0, prior_lag=prior_lag)


def _train_and_compare(trainer: TrustPCLTrainer, pi, value, iterations: int, atol: float, learning_margin) -> None:
    """Train, then the worst error of the tabular policy (tolerance ``atol``) and of the values (5e-3), each as a
    fraction of its tolerance, must stay below 1."""
    for _ in range(iterations):
        trainer.iteration()
    learned = _tabular(trainer, trainer.agent.policy)
    learned_value = trainer.agent.value(EYE).detach().numpy()
    policy_error = max(abs(learned[s] - pi[s]).max() for s in range(3))
    value_error = max(abs(learned_value[s] - value[s]) for s in range(3))
    learning_margin(max(policy_error / atol, value_error / 5e-3), 1.0, (policy_error, value_error), below=True)


@pytest.mark.learning(seed=0)
def test_training_converges_to_relative_entropy_soft_optimum_with_frozen_prior(learning_seed, learning_margin):
    trainer = TrustPCLTrainer(TwoStepMDP(), _mdp_config(prior_lag=1.0), seed=learning_seed)
    prior = _tabular(trainer, trainer.agent.prior)            # α = 1: π̃ stays the initial policy
    pi, value = soft_optimum(prior, tau=0.2, lam=0.5, gamma=0.9)
    assert max(abs(_tabular(trainer, trainer.agent.policy)[s] - pi[s]).max() for s in range(3)) > 0.1
    _train_and_compare(trainer, pi, value, iterations=300, atol=2e-3, learning_margin=learning_margin)


@pytest.mark.learning(seed=1)
def test_training_with_lagged_prior_converges_to_entropy_regularised_optimum(learning_seed, learning_margin):
    # Fixed point of θ̃ ← αθ̃ + (1−α)θ: π = π*(π̃ = π) ⇔ π ∝ exp(Q/τ), the τ-only soft optimum (λ drops out).
    trainer = TrustPCLTrainer(TwoStepMDP(), _mdp_config(prior_lag=0.95), seed=learning_seed)
    pi, value = soft_optimum({s: np.array([0.5, 0.5]) for s in range(3)}, tau=0.2, lam=0.0, gamma=0.9)
    assert max(abs(_tabular(trainer, trainer.agent.policy)[s] - pi[s]).max() for s in range(3)) > 0.1
    _train_and_compare(trainer, pi, value, iterations=700, atol=5e-3, learning_margin=learning_margin)


# ------------------------------------------------------------------------------------------- the (τ+λ) trap
def test_policy_step_does_not_scale_with_lambda():
    """Autograd of Huber(C) would multiply the policy gradient by (τ+λ); the surrogate does not.

    At initialisation π̃ = π, so the λ terms of C cancel and C is the same for λ = 0 and λ = 500: the surrogate
    step must be the same too (autograd would give 0 at τ = λ = 0 and a 500× larger step at λ = 500).
    """
    env = gym.make("Pendulum-v1")
    norms = {}
    for lam in (0.0, 500.0):
        torch.manual_seed(0)
        config = TrustPCLConfig(max_divergence=None, lambda_init=lam, clip_norm=1e9, critic_weight=0.0)
        agent = TrustPCL(3, env.action_space, config)
        replay = SubEpisodeReplay(100, 10, 3, (1,), False, 0.0, seed=0)
        collector = SubEpisodeCollector(env, seed=0)
        for _ in range(20):
            for sub in collector.collect(agent.act, 10)[0]:
                replay.add(sub, insert_step=0)
        norms[lam] = agent.update(replay.sample(64))["grad_norm"]
    assert norms[0.0] > 0.0
    assert norms[500.0] == pytest.approx(norms[0.0], rel=1e-4)


# ----------------------------------------------------------------------------------------- λ by bisection
def test_tilted_kl_is_kl_of_softmax_weights_from_uniform():
    returns = np.random.default_rng(0).normal(-200.0, 50.0, size=100)
    for lam in (1.0, 30.0, 400.0):
        weights = np.exp((returns - returns.max()) / lam)
        weights /= weights.sum()
        assert tilted_kl(returns, lam) == pytest.approx(float(np.sum(weights * np.log(weights * 100))), rel=1e-9)


def test_bisection_recovers_the_lambda_of_a_chosen_kl():
    returns = np.random.default_rng(1).normal(-200.0, 50.0, size=100)
    lengths = np.full(100, 500)
    for lam_true in (3.0, 37.0, 250.0):
        kl = tilted_kl(returns, lam_true)
        agent = TrustPCL(3, gym.spaces.Discrete(2), TrustPCLConfig(max_divergence=kl / 500))
        assert agent.lambda_target(returns, lengths) == pytest.approx(lam_true, rel=1e-6)


def test_bisection_clamps_to_the_interval_and_smoothing_tracks_the_target():
    returns = np.array([0.0, 1.0, 2.0, 3.0])
    assert solve_lambda(returns, target_kl=math.log(4) + 0.1) == 0.0       # beyond the greedy tilt's KL
    assert solve_lambda(returns, target_kl=1e-12) == 1000.0
    agent = TrustPCL(3, gym.spaces.Discrete(2), TrustPCLConfig(max_divergence=0.001))
    for _ in range(1000):
        agent.smooth_lambda(40.0)
    assert agent.lam == pytest.approx(40.0, rel=1e-3)                   # 0.99^1000 ≈ 4e-5


# ---------------------------------------------------------------------------------------------- replay
def _sub_episode(steps: int, marker: float) -> SubEpisode:
    return SubEpisode(np.full((steps + 1, 2), marker, np.float32), np.zeros(steps, np.int64),
                      np.full(steps, marker, np.float32), terminated=False)


def test_replay_sampling_follows_recency_distribution():
    replay = SubEpisodeReplay(capacity=300, length=3, obs_dim=2, action_shape=(), discrete=True,
                              recency=0.01, seed=123)
    for step in range(500):
        replay.add(_sub_episode(3, marker=float(step)), insert_step=step)
    stored = replay.insert_step[: replay.size]
    assert sorted(stored) == list(range(200, 500))                      # FIFO: the newest 300 remain
    expected = np.exp(0.01 * (stored - 499.0))
    expected /= expected.sum()
    draws = 30_000
    counts = np.bincount(replay.sample_indices(draws), minlength=replay.size)

    def chi_square(probabilities: np.ndarray) -> float:
        return float(np.sum((counts - draws * probabilities) ** 2 / (draws * probabilities)))

    threshold = 299 + 5 * math.sqrt(2 * 299)                             # df = 299, mean + 5 sd
    assert chi_square(expected) < threshold
    assert chi_square(np.full(replay.size, 1 / replay.size)) > 10 * threshold   # the test can tell uniform apart
    sampled = replay.sample(2000)
    assert float(sampled.rewards[:, 0].mean()) == pytest.approx(float(expected @ stored), abs=3.0)


def test_replay_pads_short_sub_episodes_with_a_mask():
    replay = SubEpisodeReplay(capacity=4, length=3, obs_dim=2, action_shape=(), discrete=True, recency=0.0)
    replay.add(_sub_episode(2, marker=5.0), insert_step=0)
    batch = replay.sample(1)
    assert batch.lengths.tolist() == [2]
    assert batch.mask.tolist() == [[1.0, 1.0, 0.0]]
    assert batch.observations[0, :, 0].tolist() == [5.0, 5.0, 5.0, 0.0]
    with pytest.raises(ValueError, match="valid: 1..3"):
        replay.add(_sub_episode(4, marker=1.0), insert_step=1)


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValueError, match="prior_lag=1.5"):
        TrustPCLConfig(prior_lag=1.5)
    with pytest.raises(ValueError, match="max_divergence=0"):
        TrustPCLConfig(max_divergence=0)
