"""Counter-based random draws for batched environments.

A batched core cannot keep one ``np.random.Generator`` per environment without a Python loop over environments, and
one shared generator would make env ``e``'s trajectory depend on how many other envs reset before it. Instead every
random number is a pure function of ``(env seed, episode index, draw index)``: a splitmix64-style hash evaluated
with vectorised ``uint64`` arithmetic. Env ``e`` of a batch and a single environment given the same seed therefore
see exactly the same start states, whatever else is in the batch.

Seeding semantics (the same for the single and the batched environments):
- ``reset`` with a seed sets the env's seed and its episode index to 0;
- ``reset`` without a seed moves to the next episode index of the current seed (an env never seeded gets a seed
  from OS entropy first).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: the splitmix64 increment
MAX_DRAWS = 16
_DRAW_OFFSETS = np.array([(k + 1) * _GOLDEN % 2**64 for k in range(MAX_DRAWS)], dtype=np.uint64)
_EPISODE_STRIDE = np.uint64(MAX_DRAWS * _GOLDEN % 2**64)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 whose output bits all depend on all input bits."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


class CounterRNG:
    """Per-environment random streams indexed by (seed, episode, draw); see the module docstring.

    Draw ``k`` of episode ``i`` is output number ``i * MAX_DRAWS + k`` of the splitmix64 generator started from the
    (mixed) env seed: ``mix64(start + (i * MAX_DRAWS + k + 1) * GOLDEN)``. splitmix64 passes BigCrush, and its
    outputs are addressable by position, which is what makes the draws computable for any set of envs at once.
    """

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.seeded = np.zeros(num_envs, dtype=bool)
        # Stream position of draw 0 of the current episode, minus one GOLDEN step: start + i * MAX_DRAWS * GOLDEN.
        self._positions = np.zeros(num_envs, dtype=np.uint64)

    def begin_episode(self, ids: np.ndarray, num_draws: int, seeds: np.ndarray | None = None) -> np.ndarray:
        """Start a new episode for envs ``ids`` and return its draws: floats in [0, 1), shape (len(ids), num_draws).

        ``seeds`` (one per id, ``-1`` = none) re-seeds envs. Column ``k`` is draw ``k`` of the episode whatever
        ``num_draws`` is, so a family can add draws without changing the earlier ones.
        """
        if not 1 <= num_draws <= MAX_DRAWS:
            raise ValueError(f"num_draws={num_draws} must be in 1..{MAX_DRAWS}")
        if seeds is not None and (seeds >= 0).any():
            self._seed(ids[seeds >= 0], seeds[seeds >= 0].astype(np.uint64))
        if not self.seeded[
            ids
        ].all():  # never seeded and no seed given: OS entropy, like np.random.Generator()
            fresh = ids[~self.seeded[ids]]
            self._seed(fresh, np.random.SeedSequence().generate_state(len(fresh), dtype=np.uint64))
        self._positions[ids] += _EPISODE_STRIDE  # next episode; uint64 arithmetic wraps, as splitmix64's does
        bits = _mix64(self._positions[ids][:, None] + _DRAW_OFFSETS[:num_draws]) >> np.uint64(11)
        return bits.astype(np.float64) * 2.0**-53

    def _seed(self, ids: np.ndarray, seeds: np.ndarray) -> None:
        # mix64(seed + GOLDEN) decorrelates nearby seeds; one stride back so the first episode is episode 0.
        self._positions[ids] = _mix64(seeds + np.uint64(_GOLDEN)) - _EPISODE_STRIDE
        self.seeded[ids] = True


def uniform_integers(u: np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """Integers uniform in [0, n) from uniforms in [0, 1) (bias < n / 2^53, i.e. none that matters).

    ``n`` may be an array broadcasting against ``u`` (e.g. one bound per draw column).
    """
    return np.minimum((u * n).astype(np.int64), np.asarray(n) - 1)


def normalize_seeds(seed: int | Sequence[int | None] | None, num_envs: int) -> np.ndarray | None:
    """gymnasium's vector seeding convention: ``int s`` -> ``s, s+1, ...``; a list gives one seed per env.

    Returns an int64 array with ``-1`` for "no seed", or ``None`` when no env gets a seed.
    """
    if seed is None:
        return None
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        values: list[int | None] = [int(seed) + i for i in range(num_envs)]
    else:
        values = list(seed)
        if len(values) != num_envs:
            raise ValueError(f"got {len(values)} seeds for {num_envs} envs; pass one seed per env or one int")
    for value in values:
        if value is not None and not (isinstance(value, (int, np.integer)) and 0 <= value < 2**63):
            raise ValueError(f"seed={value!r} is not valid; seeds are integers in [0, 2**63) or None")
    return np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
