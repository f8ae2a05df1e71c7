"""Multi-step path consistency of Trust-PCL (paper §4.1, eq. "consistency error"; docs/spec/baselines.md).

For a window of d steps starting at s_t (truncated at the end of its sub-episode, e = min(t+d, T)):

    C(s_{t:e}) = −V_φ(s_t) + γ^{e−t} V̄(s_e)
                 + Σ_{j=t}^{e−1} γ^{j−t} [ r_j − (τ+λ) ln π_θ(a_j|s_j) + λ ln π̃(a_j|s_j) ]

V̄ is the lagged target value network, and V̄(s_e) = 0 when s_e is terminal. The optimal π*, V* of the
entropy (τ) plus relative-entropy (λ) regularised objective make C = 0 on every path, on- or off-policy; a
truncated window is itself a valid (shorter) consistency, so every step of a sub-episode yields one.
"""

from __future__ import annotations

import torch


def window_discounts(length: int, rollout: int, gamma: float, dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """``M[t, j] = γ^{j−t}`` if ``t ≤ j < t + d`` else 0, so ``x @ M.T`` is the discounted window sum of ``x``."""
    t = torch.arange(length, device=device).unsqueeze(1)
    j = torch.arange(length, device=device).unsqueeze(0)
    in_window = (j >= t) & (j < t + rollout)
    return torch.where(in_window, gamma ** (j - t).clamp(min=0).double(), 0.0).to(dtype)


def consistency_error(
    rewards: torch.Tensor,
    log_pi: torch.Tensor,
    log_prior: torch.Tensor,
    values: torch.Tensor,
    target_values: torch.Tensor,
    mask: torch.Tensor,
    lengths: torch.Tensor,
    terminated: torch.Tensor,
    *,
    gamma: float,
    tau: float,
    lam: float,
    rollout: int,
) -> torch.Tensor:
    """C for every start step of every sub-episode: shape ``[B, P]``, 0 where ``mask`` is 0.

    Args: ``rewards, log_pi, log_prior, values, mask``: ``[B, P]`` (``values`` = V_φ(s_t));
    ``target_values``: ``[B, P+1]`` (V̄(s_t) for t = 0..P); ``lengths``: ``[B]`` real steps T;
    ``terminated``: ``[B]`` whether s_T is terminal.
    """
    steps = rewards.shape[1]
    discounts = window_discounts(steps, rollout, gamma, rewards.dtype, rewards.device)
    soft_rewards = mask * (rewards - (tau + lam) * log_pi + lam * log_prior)
    discounted_sum = soft_rewards @ discounts.T

    t = torch.arange(steps, device=rewards.device).unsqueeze(0)
    end = torch.minimum(t + rollout, lengths.unsqueeze(1))                    # e = min(t+d, T)
    bootstrap = target_values.gather(1, end)                                  # V̄(s_e)
    at_terminal = terminated.unsqueeze(1) & (end == lengths.unsqueeze(1))
    bootstrap = torch.where(at_terminal, torch.zeros_like(bootstrap), bootstrap)
    bootstrap_discount = gamma ** (end - t).clamp(min=0).to(rewards.dtype)

    return mask * (-values + bootstrap_discount * bootstrap + discounted_sum)
