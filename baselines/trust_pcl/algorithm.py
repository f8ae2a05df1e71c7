"""Trust-PCL's learner: π_θ, V_φ, the lagged prior π̃ and target V̄, λ, and the gradient step (paper §4, App. C).

The loss is the Huber loss of the consistency error C (``consistency.py``), but its gradient is written through
surrogates rather than autograd of Huber(C), because autograd would put a (τ+λ) factor on the policy step and λ
reaches the hundreds (docs/spec/baselines.md, "the (τ+λ) trap"). With h = Huber'(C) = clip(C, −δ, δ) held constant:

    policy:  −h · Σ_{j<d} γ^j ∇_θ ln π_θ(a_{t+j}|s_{t+j})      value:  −h · ∇_φ V_φ(s_t)

Both are averaged over every (sub-episode, start step) pair of the batch and taken in one Adam step (lr 1e-4,
global grad-norm clip 40). After each step the lagged copies move: θ̃ ← αθ̃ + (1−α)θ, φ̄ ← αφ̄ + (1−α)φ.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from msol.baselines.trust_pcl.consistency import consistency_error, window_discounts
from msol.baselines.trust_pcl.lagrange import solve_lambda
from msol.baselines.trust_pcl.networks import Policy, Value
from msol.baselines.trust_pcl.replay import SubEpisodeBatch
from msol.common.device import build_on_cpu
from msol.common.rules import (
    LAYERS,
    NON_NEGATIVE,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Rule,
    is_number,
    optional,
)


@dataclass
class TrustPCLConfig:
    """Defaults: the reference Trust-PCL (off-policy) MuJoCo command of the authors' code (pcl_rl README)."""

    rollout: int = 1                      # d: consistency window (search {1, 5, 10})
    max_divergence: float | None = 0.001  # ε: per-step KL budget (search {0.001, 0.0005, 0.002}); None = fixed λ
    tau: float = 0.0                      # entropy temperature
    gamma: float = 0.995
    lr: float = 1e-4
    batch_size: int = 64                  # Q: sub-episodes per gradient step
    collect_steps: int = 10               # P: env steps per training step = sub-episode length
    replay_size: int = 5000
    recency: float = 0.001                # β: replay sampling ∝ exp(β·(insert step − newest))
    prior_lag: float = 0.99               # α: lag of π̃ and V̄
    clip_norm: float = 40.0
    huber_delta: float = 1.0              # the reference clips C to ±1 in the gradient
    critic_weight: float = 1.0
    lambda_init: float = 0.0              # λ before any episode completed (or forever if max_divergence=None)
    lambda_max: float = 1000.0
    lambda_smoothing: float = 0.99
    kl_episodes: int = 100                # the last 100 completed episodes estimate KL(λ)
    hidden: Sequence[int] = (64, 64)
    log_std_init: float = 0.0

    def __post_init__(self) -> None:
        for name, (valid, what) in CONFIG_RULES.items():
            if not valid(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r}: {what}")


CONFIG_RULES: dict[str, Rule] = {  # what each field of TrustPCLConfig must be
    **dict.fromkeys(("rollout", "batch_size", "collect_steps", "replay_size", "kl_episodes"), POSITIVE_INT),
    "max_divergence": optional(POSITIVE),
    **dict.fromkeys(("gamma", "prior_lag", "lambda_smoothing"), PROBABILITY),
    **dict.fromkeys(("lr", "clip_norm", "huber_delta", "lambda_max"), POSITIVE),
    **dict.fromkeys(("tau", "recency", "critic_weight", "lambda_init"), NON_NEGATIVE),
    "hidden": LAYERS,
    "log_std_init": (is_number, "must be a finite number"),
}


class TrustPCL:
    """Networks, optimiser and λ; ``update`` is one gradient step on a batch of sub-episodes."""

    def __init__(self, obs_dim: int, action_space: gym.Space, config: TrustPCLConfig,
                 device: torch.device | str = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.policy = build_on_cpu(lambda: Policy(obs_dim, action_space, config.hidden, config.log_std_init),
                                   self.device)
        self.value = build_on_cpu(lambda: Value(obs_dim, config.hidden), self.device)
        self.prior = copy.deepcopy(self.policy).requires_grad_(False)         # π̃ (θ̃)
        self.target_value = copy.deepcopy(self.value).requires_grad_(False)   # V̄ (φ̄)
        self.parameters = [*self.policy.parameters(), *self.value.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=config.lr)
        self.lam = float(config.lambda_init)
        self.discounts = window_discounts(config.collect_steps, config.rollout, config.gamma, device=self.device)

    def act(self, obs: np.ndarray, greedy: bool = False) -> np.ndarray:
        action = self.policy.act(torch.as_tensor(obs, dtype=torch.float32, device=self.device), greedy=greedy)
        return action.cpu().numpy()

    def update(self, batch: SubEpisodeBatch) -> dict[str, float]:
        cfg = self.config
        batch = batch.to(self.device)
        steps = batch.rewards.shape[1]
        states = batch.observations[:, :steps]

        log_pi = self.policy.log_prob(states, batch.actions)                 # ln π_θ(a_t|s_t)     [B, P]
        values = self.value(states)                                          # V_φ(s_t)            [B, P]
        with torch.no_grad():
            log_prior = self.prior.log_prob(states, batch.actions)           # ln π̃(a_t|s_t)      [B, P]
            target_values = self.target_value(batch.observations)            # V̄(s_t), t = 0..P   [B, P+1]

        consistency = consistency_error(
            batch.rewards, log_pi, log_prior, values, target_values, batch.mask, batch.lengths,
            batch.terminated, gamma=cfg.gamma, tau=cfg.tau, lam=self.lam, rollout=cfg.rollout,
        )
        n = batch.mask.sum()
        huber_grad = consistency.detach().clamp(-cfg.huber_delta, cfg.huber_delta)   # Huber'(C)
        discounted_log_pi = (batch.mask * log_pi) @ self.discounts[:steps, :steps].T  # Σ_j γ^j ln π(a_{t+j})
        policy_loss = -(huber_grad * discounted_log_pi).sum() / n
        value_loss = -(huber_grad * values).sum() / n

        self.optimizer.zero_grad()
        (policy_loss + cfg.critic_weight * value_loss).backward()
        grad_norm = nn.utils.clip_grad_norm_(self.parameters, cfg.clip_norm)
        self.optimizer.step()

        c = consistency.detach()
        huber = F.huber_loss(c, torch.zeros_like(c), reduction="none", delta=cfg.huber_delta)  # 0 where masked
        metrics = {
            "huber_loss": float(huber.sum() / n),
            "consistency_abs": float(c.abs().sum() / n),
            "grad_norm": float(grad_norm),
            "lambda": self.lam,
            "value_mean": float((values.detach() * batch.mask).sum() / n),
        }
        if not self.policy.discrete:
            metrics["log_std_mean"] = float(self.policy.log_std.detach().mean())
        return metrics

    @torch.no_grad()
    def update_lagged(self) -> None:
        """θ̃ ← αθ̃ + (1−α)θ and φ̄ ← αφ̄ + (1−α)φ."""
        weight = 1.0 - self.config.prior_lag
        for lagged, online in ((self.prior, self.policy), (self.target_value, self.value)):
            for p_lag, p in zip(lagged.parameters(), online.parameters()):
                p_lag.lerp_(p, weight)

    def lambda_target(self, returns: Sequence[float], lengths: Sequence[int]) -> float:
        """λ_new with KL(λ_new) = ε × mean episode length on the recent episodes (bisection, ``lagrange.py``)."""
        cfg = self.config
        if cfg.max_divergence is None or len(returns) == 0:
            return self.lam
        target_kl = cfg.max_divergence * float(np.mean(lengths))
        return solve_lambda(np.asarray(returns, dtype=np.float64), target_kl, cfg.lambda_max)

    def smooth_lambda(self, lam_new: float) -> None:
        """λ ← s·λ + (1−s)·λ_new, once per training step (s = 0.99)."""
        if self.config.max_divergence is not None:
            s = self.config.lambda_smoothing
            self.lam = s * self.lam + (1.0 - s) * lam_new

    # ---------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(), "value": self.value.state_dict(),
            "prior": self.prior.state_dict(), "target_value": self.target_value.state_dict(),
            "optimizer": self.optimizer.state_dict(), "lam": self.lam,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("policy", "value", "prior", "target_value", "optimizer"):
            getattr(self, name).load_state_dict(state[name])
        self.lam = float(state["lam"])
