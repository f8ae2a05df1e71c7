"""Scripted attackers and defenders, each acting on a batch of games (docs/spec/envs.md, ESS section).

An attacker maps states ``(n, K+1)`` to a split ``(A, B)``; a defender maps a split to actions (0 = destroy A,
1 = destroy B). Environments take either a strategy object or one of the names below, so a learned policy plugs in
the same way as a scripted one (see :class:`PolicyAttacker` / :class:`PolicyDefender`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from msol.envs.ess import game

Split = tuple[np.ndarray, np.ndarray]


@runtime_checkable
class Attacker(Protocol):
    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split: ...


@runtime_checkable
class Defender(Protocol):
    def choose(self, A: np.ndarray, B: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------ attackers
class OptimalAttacker:
    """Potentials as equal as possible (walking levels from the top): wins whenever φ(S₀) ≥ 1."""

    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split:
        return game.random_swap(*game.optimal_split(states, rng), rng)


class DisjointSupportAttacker:
    """Whole levels to one side until it holds about a third of φ: uneven sets on disjoint levels."""

    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split:
        return game.disjoint_support_split(states, rng)


@dataclass
class MixtureAttacker:
    """The reference training opponent: disjoint support with probability ``disjoint_prob``, else optimal.

    With at most ``optimal_below_levels`` occupied levels the attacker always plays optimally (few pieces left:
    the disjoint split would be trivially easy to answer).
    """

    disjoint_prob: float = 0.5
    optimal_below_levels: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.disjoint_prob <= 1.0:
            raise ValueError(f"disjoint_prob={self.disjoint_prob!r} must be a probability in [0, 1]")

    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split:
        states = game.as_states(states)
        flat = states.reshape(-1, states.shape[-1])
        use_disjoint = rng.random(len(flat)) < self.disjoint_prob
        use_disjoint &= game.occupied_levels(flat) > self.optimal_below_levels
        A, B = np.zeros_like(flat), np.zeros_like(flat)
        for rows, attacker in ((use_disjoint, DisjointSupportAttacker()), (~use_disjoint, OptimalAttacker())):
            if rows.any():
                A[rows], B[rows] = attacker.split(flat[rows], rng)
        return A.reshape(states.shape), B.reshape(states.shape)


class LevelSplitAttacker:
    """Theorem 3's attacker: split at the level that makes the potentials closest (``level="optimal"``) or at a
    uniformly random level (``level="random"``) — the two ends of what a learned attacker can express."""

    def __init__(self, level: str = "optimal") -> None:
        if level not in ("optimal", "random"):
            raise ValueError(f"level={level!r}; valid: 'optimal', 'random'")
        self.level = level

    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split:
        states = game.as_states(states)
        K = states.shape[-1] - 1
        if self.level == "optimal":
            levels = game.optimal_split_level(states)
        else:
            levels = rng.integers(0, K, size=states.shape[:-1])
        return game.level_split(states, levels, rng)


class RandomSplitAttacker:
    """Every piece to A or B by a coin flip."""

    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split:
        return game.random_split(states, rng)


class PolicyAttacker:
    """A learned attacker: ``predict(states as float32) -> levels``, applied through the level split."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predict = predict

    def split(self, states: np.ndarray, rng: np.random.Generator) -> Split:
        states = game.as_states(states)
        levels = np.asarray(self.predict(states.astype(np.float32))).reshape(states.shape[:-1])
        return game.level_split(states, levels, rng)


# ------------------------------------------------------------------------------------------------ defenders
class OptimalDefender:
    """Destroy the set of higher potential (ties: coin flip): wins whenever φ(S₀) < 1."""

    def choose(self, A: np.ndarray, B: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return game.optimal_defender_action(A, B, rng)


class RandomDefender:
    def choose(self, A: np.ndarray, B: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, 2, size=np.shape(A)[:-1])


class PolicyDefender:
    """A learned defender: ``predict(concat(A, B) as float32) -> actions``."""

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray]) -> None:
        self.predict = predict

    def choose(self, A: np.ndarray, B: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        obs = np.concatenate([A, B], axis=-1).astype(np.float32)
        return np.asarray(self.predict(obs)).reshape(np.shape(A)[:-1]).astype(np.int64)


ATTACKERS: dict[str, Callable[..., Attacker]] = {
    "optimal": OptimalAttacker,
    "disjoint_support": DisjointSupportAttacker,
    "mixture": MixtureAttacker,
    "level_split": LevelSplitAttacker,
    "random_level": lambda: LevelSplitAttacker("random"),
    "random_split": RandomSplitAttacker,
}
DEFENDERS: dict[str, Callable[..., Defender]] = {"optimal": OptimalDefender, "random": RandomDefender}


def make_attacker(spec: str | Attacker, **kwargs) -> Attacker:
    """An attacker from its name (``ATTACKERS``) or an object with ``split``; kwargs go to the constructor."""
    if isinstance(spec, str):
        if spec not in ATTACKERS:
            raise ValueError(f"attacker={spec!r}; valid: {', '.join(ATTACKERS)} or an object with .split()")
        return ATTACKERS[spec](**kwargs)
    if not isinstance(spec, Attacker):
        raise TypeError(f"attacker={spec!r} has no split(states, rng); valid: {', '.join(ATTACKERS)}")
    return spec


def make_defender(spec: str | Defender) -> Defender:
    """A defender from its name (``DEFENDERS``) or an object with ``choose``."""
    if isinstance(spec, str):
        if spec not in DEFENDERS:
            raise ValueError(f"defender={spec!r}; valid: {', '.join(DEFENDERS)} or an object with .choose()")
        return DEFENDERS[spec]()
    if not isinstance(spec, Defender):
        raise TypeError(f"defender={spec!r} has no choose(A, B, rng); valid: {', '.join(DEFENDERS)}")
    return spec


# ------------------------------------------------------------------------------------------------ playing
@dataclass
class GameRecord:
    """Every turn of a batch of games played to the end (``T`` = K turns at most, ``n`` games).

    ``states[t]`` is the board before turn t (``states[T]`` the final board); rows of finished games repeat their
    final board and have ``active[t] = False``.
    """

    states: np.ndarray  # (T+1, n, K+1)
    A: np.ndarray  # (T, n, K+1)
    B: np.ndarray  # (T, n, K+1)
    actions: np.ndarray  # (T, n)
    active: np.ndarray  # (T, n) bool: the game was still going at turn t
    winner: np.ndarray  # (n,) +1 defender, -1 attacker

    @property
    def lengths(self) -> np.ndarray:
        return self.active.sum(axis=0)


def play_games(
    start_states: np.ndarray, attacker: Attacker, defender: Defender, rng: np.random.Generator
) -> GameRecord:
    """Play all games to the end together (one vectorised attacker and defender call per turn)."""
    states = game.as_states(start_states)
    if states.ndim != 2:
        raise ValueError(f"start_states must have shape (n_games, K+1); got {states.shape}")
    if np.any(game.game_over(states)):
        raise ValueError("start states must be unfinished games (some piece left, none on level K)")
    K = states.shape[-1] - 1
    history, As, Bs, acts, actives = [states], [], [], [], []
    active = np.ones(len(states), dtype=bool)
    for _ in range(K):
        if not active.any():
            break
        live = np.flatnonzero(active)  # finished games are not shown to the players
        A, B = np.zeros_like(states), np.zeros_like(states)
        action = np.full(len(states), -1, dtype=np.int64)
        A[live], B[live] = attacker.split(states[live], rng)
        action[live] = np.asarray(defender.choose(A[live], B[live], rng)).astype(np.int64).reshape(-1)
        states = states.copy()
        states[live] = game.play_turn(A[live], B[live], action[live])
        As.append(A)
        Bs.append(B)
        acts.append(action)
        actives.append(active.copy())
        history.append(states)
        active = active & ~game.game_over(states)
    assert not active.any(), "a game outlived K turns"
    return GameRecord(
        states=np.stack(history), A=np.stack(As), B=np.stack(Bs), actions=np.stack(acts),
        active=np.stack(actives), winner=game.winner(states),
    )
