"""The ESS paper's theorems as properties of our game, strategies and sampler (hypothesis over K, φ and states)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from msol.envs.ess import game
from msol.envs.ess.sampler import sample_start_states
from msol.envs.ess.strategies import (
    ATTACKERS,
    LevelSplitAttacker,
    OptimalAttacker,
    OptimalDefender,
    RandomDefender,
    play_games,
)

FAST = settings(max_examples=60, deadline=None)


@st.composite
def boards(draw, winning_for: str, max_k: int = 12):
    """A board with φ < 1 (``winning_for="defender"``) or φ ≥ 1 (``"attacker"``), pieces on levels 0 … K-1."""
    K = draw(st.integers(1, max_k))
    units = game.level_units(K)
    one = 1 << K
    levels = draw(st.lists(st.integers(0, K - 1), min_size=1, max_size=60))
    board = np.zeros(K + 1, dtype=np.int64)
    total = 0
    for level in levels:
        if winning_for == "defender" and total + units[level] >= one:
            continue
        board[level] += 1
        total += units[level]
    if winning_for == "attacker":
        while total < one:  # top up with the drawn levels until φ ≥ 1
            level = levels[total % len(levels)]
            board[level] += 1
            total += units[level]
    if total == 0:
        board[0] = 1
    return board


class BiasedSplitAttacker:
    """An arbitrary attacker: each level goes to A with its own drawn probability."""

    def __init__(self, probs: list[float]) -> None:
        self.probs = probs

    def split(self, states, rng):
        p = np.resize(np.asarray(self.probs), states.shape[-1])
        A = rng.binomial(states, p).astype(np.int64)
        return A, states - A


class ScriptedDefender:
    """An arbitrary defender: replays a drawn sequence of choices."""

    def __init__(self, choices: list[int]) -> None:
        self.choices, self.turn = choices, 0

    def choose(self, A, B, rng):
        action = self.choices[self.turn % len(self.choices)]
        self.turn += 1
        return np.full(A.shape[:-1], action, dtype=np.int64)


class PessimalDefender:
    def choose(self, A, B, rng):
        return 1 - game.optimal_defender_action(A, B)


def _attackers(probs):
    return [factory() for factory in ATTACKERS.values()] + [BiasedSplitAttacker(probs)]


@FAST
@given(board=boards("defender"), probs=st.lists(st.floats(0, 1), min_size=1, max_size=8), seed=st.integers(0, 2**16))
def test_optimal_defender_wins_every_game_below_potential_one(board, probs, seed):
    rng = np.random.default_rng(seed)
    starts = np.repeat(board[None], 8, axis=0)
    for attacker in _attackers(probs):
        record = play_games(starts, attacker, OptimalDefender(), rng)
        assert np.all(record.winner == 1), type(attacker).__name__
        # the invariant behind Theorem 2a: every state stays below potential 1
        assert np.all(game.potential_units(record.states) < 1 << (board.size - 1))


@FAST
@given(board=boards("attacker"), choices=st.lists(st.integers(0, 1), min_size=1, max_size=12),
       seed=st.integers(0, 2**16))
def test_optimal_attackers_win_every_game_from_potential_one(board, choices, seed):
    rng = np.random.default_rng(seed)
    starts = np.repeat(board[None], 8, axis=0)
    for attacker in (OptimalAttacker(), LevelSplitAttacker("optimal")):
        for defender in (OptimalDefender(), RandomDefender(), PessimalDefender(), ScriptedDefender(choices)):
            record = play_games(starts, attacker, defender, rng)
            assert np.all(record.winner == -1), (type(attacker).__name__, type(defender).__name__)


@FAST
@given(board=boards("attacker"), seed=st.integers(0, 2**16))
def test_theorem3_level_split_gives_two_halves(board, seed):
    K = board.size - 1
    half = 1 << (K - 1) if K >= 1 else 0
    level = game.optimal_split_level(board[None])
    A, B = game.level_split(board[None], level, np.random.default_rng(seed))
    assert np.all(A + B == board[None])
    assert game.potential_units(A)[0] >= half and game.potential_units(B)[0] >= half
    # Theorem 3's shape: one set holds only levels >= l, the other only levels <= l
    l = level[0]
    assert any(np.all(low[0, l + 1:] == 0) and np.all(high[0, :l] == 0) for low, high in ((A, B), (B, A)))


@FAST
@given(board=boards("attacker"), seed=st.integers(0, 2**16))
def test_optimal_split_gives_two_halves(board, seed):
    K = board.size - 1
    A, B = game.optimal_split(board[None], np.random.default_rng(seed))
    assert np.all(A + B == board[None]) and np.all(A >= 0) and np.all(B >= 0)
    assert min(game.potential_units(A)[0], game.potential_units(B)[0]) >= 1 << (K - 1)


@settings(max_examples=40, deadline=None)
@given(K=st.integers(1, 4), counts=st.lists(st.integers(0, 3), min_size=5, max_size=5), seed=st.integers(0, 99))
def test_optimal_split_is_the_most_even_partition(K, counts, seed):
    board = np.asarray(counts[:K] + [0], dtype=np.int64)
    units = game.level_units(K)
    total = int(board @ units)
    best = min(abs(total - 2 * int(np.asarray(a) @ units))
               for a in itertools.product(*(range(c + 1) for c in board)))
    A, B = game.optimal_split(board[None], np.random.default_rng(seed))
    assert abs(int(game.potential_units(A)[0] - game.potential_units(B)[0])) == best


@settings(max_examples=80, deadline=None)
@given(K=st.integers(3, 18), potential=st.floats(0.13, 3.0), seed=st.integers(0, 2**16))
def test_sampled_start_states_have_the_requested_potential(K, potential, seed):
    states = sample_start_states(K, potential, 16, np.random.default_rng(seed))
    phi = game.potential(states)
    assert states.shape == (16, K + 1) and np.all(states >= 0)
    assert np.all(phi <= potential) and np.all(phi > potential - 2.0**-K)  # within one smallest piece
    if potential < 1:
        assert np.all(phi < 1)
    assert np.all(states[:, K - 2:] == 0)  # only levels below K-2 hold pieces
