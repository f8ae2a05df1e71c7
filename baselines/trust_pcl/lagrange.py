"""The relative-entropy coefficient λ from the trust-region size ε (paper §4.3; docs/spec/baselines.md).

With γ = 1, τ = 0 and deterministic dynamics, the optimum of the λ-penalised objective tilts the prior's episode
distribution by exp(R/λ). Given episodes sampled from the prior, the KL of that tilted distribution from the prior is

    KL(λ) = E_w[R/λ] − ln mean_k exp(R_k/λ),   w_k ∝ exp(R_k/λ),

which falls monotonically from ln N − ln #argmax (λ → 0) to 0 (λ → ∞). λ is the value where KL(λ) equals the
budget ε × mean episode length (ε is a per-step KL), found by bisection on [0, λ_max]. The training loop then
smooths it, λ ← 0.99 λ + 0.01 λ_new, over the last 100 completed episodes (their returns and lengths).
"""

from __future__ import annotations

import math

import numpy as np


def tilted_kl(returns: np.ndarray, lam: float) -> float:
    """KL(π* ‖ π̃) estimated from episode returns sampled from π̃, for the penalty λ (λ = 0: the limit)."""
    returns = np.asarray(returns, dtype=np.float64)
    if lam <= 0.0:
        n_best = int(np.sum(returns == returns.max()))
        return math.log(len(returns)) - math.log(n_best)
    z = (returns - returns.max()) / lam                  # shift-invariant: KL does not depend on the shift
    log_mean_exp = math.log(np.exp(z).mean())
    weights = np.exp(z) / np.exp(z).sum()
    return float(weights @ z - log_mean_exp)


def solve_lambda(returns: np.ndarray, target_kl: float, lam_max: float = 1000.0, iterations: int = 60) -> float:
    """The λ in [0, λ_max] with ``tilted_kl(returns, λ) == target_kl`` (clamped at the ends of the interval)."""
    if target_kl < 0:
        raise ValueError(f"target_kl={target_kl!r} must be >= 0")
    if len(returns) < 2 or tilted_kl(returns, 0.0) <= target_kl:
        return 0.0                                       # even the greedy tilt stays inside the trust region
    if tilted_kl(returns, lam_max) >= target_kl:
        return lam_max
    low, high = 0.0, lam_max                             # KL(low) > target > KL(high)
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if tilted_kl(returns, mid) > target_kl:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
