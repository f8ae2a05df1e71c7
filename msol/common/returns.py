"""Returns and advantages of a ``[T, B]`` rollout: generic RL operations shared by MSOL and the baselines.

Rows are time-major. A termination ends the return; a time-limit cut (``truncated``) is not an end: the return
bootstraps through it from ``bootstrap[t]``, the value of the episode's final observation.
"""

from __future__ import annotations

import torch


def nstep_returns(
    R: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, bootstrap: torch.Tensor,
    last_value: torch.Tensor, gamma: float,
) -> torch.Tensor:
    """``G_t = Σ_j γ^j R_{t+j} + γ^n V(s_{t+n}, z_{t+n-1})``, cut at terminations, bootstrapped through truncations.

    ``R`` etc. are ``[T, B]``; ``bootstrap`` holds ``V(final_obs_t, z_t)`` where ``truncated``; ``last_value`` is
    ``V(s_T, z_{T-1})``.
    """
    G = torch.empty_like(R)
    next_return = last_value
    for t in reversed(range(R.shape[0])):
        # After a time-limit cut the "next state" is the final observation, not the reset one.
        next_return = torch.where(truncated[t] > 0, bootstrap[t], next_return)
        G[t] = R[t] + gamma * (1.0 - terminated[t]) * next_return
        next_return = G[t]
    return G


def gae_advantages(
    R: torch.Tensor, values: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
    bootstrap: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float,
) -> torch.Tensor:
    """Generalised advantage estimation on the regularised reward (PPO form), same cut/bootstrap rules."""
    adv = torch.empty_like(R)
    next_adv = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(R.shape[0])):
        cut = truncated[t] > 0
        next_value = torch.where(cut, bootstrap[t], next_value)
        next_adv = torch.where(cut, torch.zeros_like(next_adv), next_adv)
        alive = 1.0 - terminated[t]
        delta = R[t] + gamma * alive * next_value - values[t]
        adv[t] = delta + gamma * lam * alive * next_adv
        next_adv, next_value = adv[t], values[t]
    return adv
