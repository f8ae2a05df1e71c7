"""Start states of a chosen potential (docs/spec/envs.md, ESS section: the reference's geometric sampler).

For each game: pick ``p`` from ``geo_ps``, draw ``2^K`` levels from Geometric(p) (level 0 most likely), keep levels
below ``K-2``, and fill pieces from the lowest level up — each level takes as many of its drawn pieces as still fit
under the target — repeating the draw until the potential equals the target rounded down to a whole level-0 piece.
So ``φ(S₀) ∈ (φ* - 2^-K, φ*]`` and ``φ(S₀) < 1`` whenever ``φ* < 1``. The draw is a single multinomial per game
(the reference draws the ``2^K`` levels one by one), and the potential is tracked in exact integer units.

Level-0 counts reach about ``p·2^K``; observations are float32, which hold integers exactly only up to ``2^24``, so
the sampler refuses targets whose level-0 count could exceed that (``φ*·2^K > 2^24``, i.e. K > 24 at φ* < 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from msol.envs.ess import game

GEO_PS: tuple[float, ...] = (0.45, 0.5, 0.6, 0.7, 0.8)
MIN_SAMPLER_K = 3  # pieces go below level K-2, so K-2 >= 1
MAX_COUNT_BITS = 24  # float32 represents every integer up to 2^24
_MAX_PASSES = 64  # each pass almost always fills the target; any remainder then goes to level 0


def target_units(K: int, potential: float) -> int:
    """The sampled potential in units of a level-0 piece, after validating K and the target potential."""
    K = game.validate_K(K)
    if K < MIN_SAMPLER_K:
        raise ValueError(f"K={K} is too small for the start-state sampler (it places pieces below level K-2); "
                         f"valid: K >= {MIN_SAMPLER_K}")
    if isinstance(potential, bool) or not isinstance(potential, (int, float, np.floating, np.integer)) \
            or not math.isfinite(potential) or potential <= 0:
        raise ValueError(f"potential={potential!r} must be a finite number > 0")
    units = math.floor(math.ldexp(float(potential), K))
    if units < 1:
        raise ValueError(f"potential={potential!r} is below one level-0 piece (2^-{K} = {2.0 ** -K:.3g}) for K={K}")
    if units > 1 << MAX_COUNT_BITS:
        max_k = max((k for k in range(K) if math.floor(math.ldexp(float(potential), k)) <= 1 << MAX_COUNT_BITS),
                    default=0)
        raise ValueError(
            f"K={K} is too large for the start-state sampler at potential={potential}: level-0 counts reach "
            f"φ·2^K = {units:.3g} > 2^{MAX_COUNT_BITS}, beyond exact float32 observations; valid: K <= {max_k}"
        )
    return units


def validate_geo_ps(geo_ps: Sequence[float]) -> np.ndarray:
    ps = np.asarray(list(geo_ps), dtype=np.float64)
    if ps.ndim != 1 or len(ps) == 0 or np.any(~np.isfinite(ps)) or np.any((ps <= 0) | (ps > 1)):
        raise ValueError(f"geo_ps={list(geo_ps)!r} must be a non-empty list of probabilities in (0, 1]")
    return ps


def sample_start_states(
    K: int, potential: float, n: int, rng: np.random.Generator, geo_ps: Sequence[float] = GEO_PS
) -> np.ndarray:
    """``n`` start states of shape ``(n, K+1)`` (int64) with ``units(S₀) = floor(potential·2^K)``."""
    target = target_units(K, potential)
    ps = validate_geo_ps(geo_ps)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r} must be an integer >= 1")
    high = K - 2  # levels 0 … K-3 may hold pieces
    p = rng.choice(ps, size=n)[:, None]
    level_probs = p * (1.0 - p) ** np.arange(high)
    beyond = np.clip(1.0 - level_probs.sum(axis=1, keepdims=True), 0.0, 1.0)
    pvals = np.concatenate([level_probs, beyond], axis=1)
    pvals /= pvals.sum(axis=1, keepdims=True)
    states = np.zeros((n, K + 1), dtype=np.int64)
    remaining = np.full(n, target, dtype=np.int64)
    for _ in range(_MAX_PASSES):
        drawn = rng.multinomial(1 << K, pvals)
        for level in range(high):
            added = np.minimum(drawn[:, level], remaining >> level)
            states[:, level] += added
            remaining -= added << level
        if not remaining.any():
            break
    states[:, 0] += remaining
    return states
