"""Spencer's attacker-defender game (ESS paper §2; docs/spec/envs.md, "Erdős–Selfridge–Spencer games"), on a batch of games at once.

A state is the vector of piece counts ``n_0 … n_K`` (shape ``(..., K+1)``, int64); a piece at level ``l`` weighs
``2^-(K-l)`` and ``φ(S) = Σ_l n_l 2^-(K-l)``. Potentials are kept in exact integer *units* of one level-0 piece
(``2^-K``): a level-``l`` piece is worth ``2^l`` units and ``φ(S) ≥ 1`` exactly when ``units(S) ≥ 2^K``. Integer
units make ties (``φ(A) = φ(B)``) and the ``φ ≥ 1`` boundary exact, which the optimal strategies, the "ties
excluded" metric and the theory tests all depend on.

A turn: the attacker splits the pieces into ``A`` and ``B`` (``A + B = S``); the defender destroys one set (action
0 = destroy A, 1 = destroy B); every piece of the other set moves up one level. A piece on level K wins for the
attacker, an empty board for the defender; a game lasts at most K turns.
"""

from __future__ import annotations

import numpy as np

MAX_K = 40  # units (counts · 2^l) stay exact in int64 and potentials exact in float64 up to here

DESTROY_A = 0
DESTROY_B = 1


def validate_K(K: int) -> int:
    """``K`` as an int, or a ValueError naming the valid range."""
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or not 1 <= int(K) <= MAX_K:
        raise ValueError(f"K={K!r} is not a valid number of levels; valid: an integer in [1, {MAX_K}]")
    return int(K)


def as_states(states: np.ndarray | list, K: int | None = None) -> np.ndarray:
    """Check a state batch (non-negative integer counts, last axis K+1) and return it as int64."""
    arr = np.asarray(states)
    if arr.ndim == 0 or arr.shape[-1] < 2:
        raise ValueError(f"a state needs K+1 >= 2 level counts on its last axis; got shape {arr.shape}")
    if K is not None and arr.shape[-1] != K + 1:
        raise ValueError(f"state has {arr.shape[-1]} levels but K={K} needs K+1={K + 1}")
    validate_K(arr.shape[-1] - 1)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("piece counts must be whole numbers")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"piece counts must be integers; got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError(f"piece counts must be >= 0; got {arr[arr < 0][:5].tolist()}")
    return arr


def level_units(K: int) -> np.ndarray:
    """Value of one piece per level, in units of a level-0 piece: ``2^l`` for ``l = 0 … K``."""
    return np.left_shift(np.int64(1), np.arange(validate_K(K) + 1, dtype=np.int64))


def level_weights(K: int) -> np.ndarray:
    """The potential of one piece per level, ``w_l = 2^-(K-l)`` (Definition 1)."""
    return np.ldexp(1.0, np.arange(validate_K(K) + 1) - K)


def potential_units(states: np.ndarray) -> np.ndarray:
    """Exact ``φ(S)·2^K`` as int64."""
    states = np.asarray(states, dtype=np.int64)
    return states @ level_units(states.shape[-1] - 1)


def potential(states: np.ndarray) -> np.ndarray:
    """``φ(S) = Σ_l n_l 2^-(K-l)`` (float64, exact for K ≤ MAX_K and moderate counts)."""
    K = np.shape(states)[-1] - 1
    return np.ldexp(potential_units(states).astype(np.float64), -K)


def one_unit_threshold(K: int) -> int:
    """Units of potential 1: ``2^K``."""
    return 1 << validate_K(K)


def attacker_won(states: np.ndarray) -> np.ndarray:
    return np.asarray(states)[..., -1] > 0


def defender_won(states: np.ndarray) -> np.ndarray:
    return ~np.any(np.asarray(states) > 0, axis=-1)


def game_over(states: np.ndarray) -> np.ndarray:
    return attacker_won(states) | defender_won(states)


def winner(states: np.ndarray) -> np.ndarray:
    """+1 where the defender has won, -1 where the attacker has, 0 while the game goes on."""
    return defender_won(states).astype(np.int64) - attacker_won(states).astype(np.int64)


def advance(kept: np.ndarray) -> np.ndarray:
    """Every piece of the surviving set moves up one level (level K pieces cannot exist before a move)."""
    kept = np.asarray(kept, dtype=np.int64)
    moved = np.zeros_like(kept)
    moved[..., 1:] = kept[..., :-1]
    return moved


def play_turn(A: np.ndarray, B: np.ndarray, destroy: np.ndarray) -> np.ndarray:
    """The next states after the defender destroys A (0) or B (1) in each game."""
    destroy = np.asarray(destroy)
    if np.any((destroy != DESTROY_A) & (destroy != DESTROY_B)):
        raise ValueError(f"defender actions must be 0 (destroy A) or 1 (destroy B); got {np.unique(destroy)}")
    kept = np.where(destroy[..., None] == DESTROY_A, B, A)
    return advance(kept)


def optimal_defender_action(A: np.ndarray, B: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Destroy the set of higher potential (Theorem 2a); ties go to a coin flip (or to A without ``rng``)."""
    ua, ub = potential_units(A), potential_units(B)
    tie_break = rng.integers(0, 2, size=ua.shape) if rng is not None else np.zeros(ua.shape, dtype=np.int64)
    return np.where(ua > ub, DESTROY_A, np.where(ub > ua, DESTROY_B, tie_break)).astype(np.int64)


def is_fatal(states: np.ndarray, next_states: np.ndarray) -> np.ndarray:
    """A defender move from a won position (φ < 1) to a lost one (φ ≥ 1) (the paper's "fatal mistake")."""
    one = one_unit_threshold(np.shape(states)[-1] - 1)
    return (potential_units(states) < one) & (potential_units(next_states) >= one)


# ------------------------------------------------------------------------------------------------ attacker splits
def random_swap(A: np.ndarray, B: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Swap A and B in a random half of the games, so a set's side never tells which one is heavier."""
    swap = rng.random(A.shape[:-1])[..., None] < 0.5
    return np.where(swap, B, A), np.where(swap, A, B)


def optimal_split(states: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Make φ(A) and φ(B) as equal as possible, walking levels from the top (the reference "optimal" attacker).

    At each level the lighter side first receives the pieces that close the gap, the rest is halved, and an odd
    piece goes to the side that is then lighter (a coin flip on a tie). Because every weight divides the ones above
    it, this greedy pass reaches the smallest possible |φ(A) - φ(B)|; with φ(S) ≥ 1 that makes both ≥ ½ (Theorem 3
    shows such a split exists, and the most even split is at least as even).
    """
    states = as_states(states)
    K = states.shape[-1] - 1
    units = level_units(K)
    A = np.zeros_like(states)
    gap = np.zeros(states.shape[:-1], dtype=np.int64)  # units(A) - units(B) so far
    occupied = np.flatnonzero(np.any(states.reshape(-1, K + 1) > 0, axis=0))  # empty levels change nothing
    for level in occupied[::-1]:
        count, w = states[..., level], units[level]
        closing = np.minimum(count, -(-np.abs(gap) // w))  # ceil(|gap| / w), at most all pieces of the level
        to_a = np.where(gap < 0, closing, 0)
        gap = gap + np.where(gap < 0, closing, -closing) * w
        rest = count - closing
        coin = rng.random(gap.shape) < 0.5
        odd_to_a = (rest % 2 == 1) & ((gap < 0) | ((gap == 0) & coin))
        to_a = to_a + rest // 2 + odd_to_a
        A[..., level] = to_a
        gap = gap + np.where(rest % 2 == 1, np.where(odd_to_a, w, -w), 0)
    return A, states - A


def level_split_gaps(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every level l < K: pieces of level l that go to B, and the resulting |φ(A) - φ(B)| in units.

    The split of Theorem 3: levels below l to A, levels above l to B, and level l divided to make the potentials as
    close as possible. Returns ``(to_b, gap)``, both of shape ``(..., K)``.
    """
    states = as_states(states)
    K = states.shape[-1] - 1
    values = states * level_units(K)  # units held on each level
    below = np.cumsum(values, axis=-1) - values
    above = values.sum(axis=-1, keepdims=True) - below - values
    below, above = below[..., :K], above[..., :K]
    count, w = states[..., :K], level_units(K)[:K]
    # φ(A) - φ(B) = below + (count - k) w - above - k w; the best k is the nearest integer to target / (2w).
    target = below + count * w - above
    k_low = np.clip(np.floor_divide(target, 2 * w), 0, count)
    k_high = np.clip(k_low + 1, 0, count)
    gap_low, gap_high = np.abs(target - 2 * k_low * w), np.abs(target - 2 * k_high * w)
    to_b = np.where(gap_high < gap_low, k_high, k_low)
    return to_b, np.minimum(gap_low, gap_high)


def level_split(states: np.ndarray, levels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The attacker-environment action: split every game at its level ``l`` (Theorem 3), then swap A/B at random."""
    states = as_states(states)
    K = states.shape[-1] - 1
    levels = np.broadcast_to(np.asarray(levels), states.shape[:-1])
    if np.any((levels < 0) | (levels >= K)):
        raise ValueError(f"split levels must be in [0, {K - 1}] for K={K}; got {np.unique(levels).tolist()}")
    to_b_all, _ = level_split_gaps(states)
    to_b = np.take_along_axis(to_b_all, levels[..., None].astype(np.int64), axis=-1)[..., 0]
    idx = np.arange(K + 1)
    lvl = levels[..., None]
    A = np.where(idx < lvl, states, 0) + np.where(idx == lvl, states - to_b[..., None], 0)
    return random_swap(A, states - A, rng)


def optimal_split_level(states: np.ndarray) -> np.ndarray:
    """The level whose split is the most even: with φ ≥ 1 both sets then hold ≥ ½ (Theorem 3)."""
    _, gaps = level_split_gaps(states)
    return np.argmin(gaps, axis=-1)


def disjoint_support_split(
    states: np.ndarray,
    rng: np.random.Generator,
    thresholds: tuple[float, ...] = (1 / 3, 5 / 16, 7 / 16),
    threshold_probs: tuple[float, ...] = (0.8, 0.1, 0.1),
) -> tuple[np.ndarray, np.ndarray]:
    """Whole levels, in random order, go to A until A holds a sampled fraction (about a third) of φ, the rest to B.

    A level holding at least half the potential on its own is halved instead, so neither set is trivially the
    whole board. The result has uneven potentials on (mostly) disjoint levels, far from the optimal attacker's
    states; sets are swapped at random.
    """
    states = as_states(states)
    flat = states.reshape(-1, states.shape[-1])
    n, L = flat.shape
    units = level_units(L - 1)
    total = potential_units(flat)
    tau = rng.choice(np.asarray(thresholds, dtype=np.float64), p=threshold_probs, size=n)
    # occupied levels first, in random order (empty ones change nothing and are skipped)
    order = np.argsort(rng.random((n, L)) + (flat == 0), axis=1)
    rows = np.arange(n)
    A = np.zeros_like(flat)
    held_a = np.zeros(n, dtype=np.int64)
    for j in range(int(occupied_levels(flat).max(initial=0))):
        level = order[:, j]
        count = flat[rows, level]
        value = count * units[level]
        dominant = (count > 0) & (2 * value >= total)
        to_a = np.where(dominant, count // 2, np.where(held_a < tau * total, count, 0))
        A[rows, level] = to_a
        held_a += to_a * units[level]
    A = A.reshape(states.shape)
    return random_swap(A, states - A, rng)


def random_split(states: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each piece goes to A or B by a fair coin: an uninformed attacker, useful as a test opponent."""
    states = as_states(states)
    A = rng.binomial(states, 0.5).astype(np.int64)
    return A, states - A


def occupied_levels(states: np.ndarray) -> np.ndarray:
    return np.count_nonzero(np.asarray(states) > 0, axis=-1)
