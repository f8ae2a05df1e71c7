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
_MAX_SEED = 2**64


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 whose output bits all depend on all input bits."""
    x = x ^ (x >> 30)
    x = x * 0xBF58476D1CE4E5B9
    x = x ^ (x >> 27)
    x = x * 0x94D049BB133111EB
    return x ^ (x >> 31)


class CounterRNG:
    """Per-environment random streams indexed by (seed, episode, draw); see the module docstring."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.seeds = np.zeros(num_envs, dtype=np.uint64)
        self.episodes = np.full(num_envs, -1, dtype=np.int64)
        self.seeded = np.zeros(num_envs, dtype=bool)
        self._keys = np.zeros(num_envs, dtype=np.uint64)

    def begin_episode(self, ids: np.ndarray, seeds: np.ndarray | None = None) -> None:
        """Start a new episode for envs ``ids``; ``seeds`` (one per id, ``-1`` = none) re-seeds them."""
        if seeds is None:
            seeds = np.full(len(ids), -1, dtype=np.int64)
        reseed = seeds >= 0
        fresh = ~reseed & ~self.seeded[ids]
        if fresh.any():  # never seeded and no seed given: OS entropy, like an unseeded np.random.Generator
            entropy = np.random.SeedSequence().generate_state(int(fresh.sum()), dtype=np.uint64)
            self.seeds[ids[fresh]] = entropy
            self.episodes[ids[fresh]] = -1
            self.seeded[ids[fresh]] = True
        if reseed.any():
            self.seeds[ids[reseed]] = seeds[reseed].astype(np.uint64)
            self.episodes[ids[reseed]] = -1
            self.seeded[ids[reseed]] = True
        self.episodes[ids] += 1
        self._keys[ids] = _mix64(_mix64(self.seeds[ids] + _GOLDEN) + self.episodes[ids].astype(np.uint64))

    def uniform(self, ids: np.ndarray, draw: int) -> np.ndarray:
        """Draw number ``draw`` of the current episode of envs ``ids``: floats uniform in [0, 1)."""
        h = _mix64(self._keys[ids] + np.uint64((draw + 1) * _GOLDEN % _MAX_SEED))
        return (h >> 11).astype(np.float64) * 2.0**-53

    def integers(self, ids: np.ndarray, draw: int, n: int) -> np.ndarray:
        """Draw number ``draw``: integers uniform in [0, n) (bias < n / 2^53, i.e. none that matters)."""
        return np.minimum((self.uniform(ids, draw) * n).astype(np.int64), n - 1)


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
