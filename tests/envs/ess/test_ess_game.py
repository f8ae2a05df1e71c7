"""Rules of the attacker-defender game, the attacker splits and the start-state sampler's parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from msol.envs.ess import game
from msol.envs.ess.sampler import sample_start_states
from msol.envs.ess.strategies import (
    DisjointSupportAttacker,
    MixtureAttacker,
    OptimalAttacker,
    OptimalDefender,
    RandomDefender,
    make_attacker,
    make_defender,
    play_games,
)


def test_potential_weights_pieces_by_level():
    board = np.array([4, 1, 0, 1, 0])  # K = 4: 4/16 + 1/8 + 1/2
    assert game.potential(board) == pytest.approx(0.875)
    assert game.potential_units(board) == 4 + 2 + 8
    assert game.level_weights(4).tolist() == [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]


def test_turn_destroys_one_set_and_moves_the_other_up():
    A = np.array([[2, 0, 1, 0]])
    B = np.array([[1, 3, 0, 0]])
    assert game.play_turn(A, B, np.array([0])).tolist() == [[0, 1, 3, 0]]
    assert game.play_turn(A, B, np.array([1])).tolist() == [[0, 2, 0, 1]]
    assert game.winner(np.array([[0, 2, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0]])).tolist() == [-1, 1, 0]
    with pytest.raises(ValueError, match="0 \\(destroy A\\) or 1"):
        game.play_turn(A, B, np.array([2]))


def test_fatal_mistake_is_crossing_potential_one():
    before = np.array([[0, 1, 1, 0]])  # φ = 1/4 + 1/2 = 3/4
    assert game.is_fatal(before, np.array([[0, 0, 0, 1]])).tolist() == [True]
    assert game.is_fatal(before, np.array([[0, 0, 1, 0]])).tolist() == [False]


def test_optimal_defender_destroys_the_heavier_set_and_flips_coins_on_ties():
    A = np.array([[0, 1, 0], [2, 0, 0], [0, 1, 0]])
    B = np.array([[1, 0, 0], [0, 1, 0], [2, 0, 0]])  # K = 2
    rng = np.random.default_rng(0)
    actions = np.stack([game.optimal_defender_action(A, B, rng) for _ in range(200)])
    assert np.all(actions[:, 0] == 0)  # 1/2 vs 1/4
    assert set(np.unique(actions[:, 1])) == {0, 1}  # 2/4 vs 1/2: a tie
    assert set(np.unique(actions[:, 2])) == {0, 1}


@pytest.mark.parametrize("split", ["optimal", "disjoint_support", "mixture", "level_split", "random_level",
                                   "random_split"])
def test_every_split_partitions_the_board(split):
    rng = np.random.default_rng(1)
    states = sample_start_states(8, 0.95, 64, rng)
    A, B = make_attacker(split).split(states, rng)
    assert np.all(A + B == states) and np.all(A >= 0) and np.all(B >= 0)


def test_level_split_puts_lower_levels_on_one_side_and_higher_on_the_other():
    board = np.array([[3, 2, 1, 1, 0]])  # K = 4
    for level in range(4):
        A, B = game.level_split(board, np.array([level]), np.random.default_rng(level))
        assert any(np.all(low[0, level + 1:] == 0) and np.all(high[0, :level] == 0)
                   for low, high in ((A, B), (B, A)))
    with pytest.raises(ValueError, match="split levels must be in \\[0, 3\\]"):
        game.level_split(board, np.array([4]), np.random.default_rng(0))


def test_disjoint_support_gives_uneven_sets_on_many_levels():
    rng = np.random.default_rng(2)
    board = np.array([[0, 2, 2, 2, 2, 1, 0, 0, 0]])  # K = 8, no level holds half the potential
    states = np.repeat(board, 500, axis=0)
    A, B = DisjointSupportAttacker().split(states, rng)
    assert np.all(np.minimum(A, B) == 0)  # every level goes whole to one side
    gap = np.abs(game.potential(A) - game.potential(B))
    assert gap.mean() > 0.05
    assert 0.3 < np.mean(game.potential(A) > game.potential(B)) < 0.7  # heavier side is random


def test_mixture_plays_optimally_with_few_occupied_levels():
    rng = np.random.default_rng(3)
    board = np.repeat(np.array([[6, 0, 3, 0, 0, 0, 0]]), 300, axis=0)  # 2 occupied levels
    A, B = MixtureAttacker(disjoint_prob=1.0).split(board, rng)
    assert np.all(np.abs(game.potential_units(A) - game.potential_units(B)) <= 1)
    wide = np.repeat(np.array([[2, 2, 2, 2, 1, 0, 0]]), 300, axis=0)
    A, B = MixtureAttacker(disjoint_prob=1.0).split(wide, rng)
    assert np.all(np.minimum(A, B)[:, :4] == 0)
    with pytest.raises(ValueError, match="disjoint_prob"):
        MixtureAttacker(disjoint_prob=1.5)


def test_play_games_ends_within_K_turns_and_records_every_turn():
    rng = np.random.default_rng(4)
    starts = sample_start_states(6, 0.99, 200, rng)
    record = play_games(starts, OptimalAttacker(), RandomDefender(), rng)
    assert record.A.shape[0] <= 6 and np.all(record.lengths >= 1)
    assert np.all(record.A[record.active] + record.B[record.active] == record.states[:-1][record.active])
    assert set(np.unique(record.winner)) <= {-1, 1}
    assert np.all(record.actions[~record.active] == -1)
    assert np.all(play_games(starts, OptimalAttacker(), OptimalDefender(), rng).winner == 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"K": 0, "potential": 0.9}, "K=0 is not a valid number of levels"),
        ({"K": 2, "potential": 0.9}, "K=2 is too small"),
        ({"K": 25, "potential": 0.99}, "K=25 is too large for the start-state sampler"),
        ({"K": 41, "potential": 0.99}, "valid: an integer in \\[1, 40\\]"),
        ({"K": 5, "potential": 0.0}, "potential=0.0 must be a finite number > 0"),
        ({"K": 5, "potential": -1.0}, "must be a finite number > 0"),
        ({"K": 5, "potential": float("nan")}, "must be a finite number > 0"),
        ({"K": 5, "potential": 0.01}, "below one level-0 piece"),
    ],
)
def test_sampler_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_start_states(n=4, rng=np.random.default_rng(0), **kwargs)


def test_unknown_strategy_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid: optimal, disjoint_support"):
        make_attacker("greedy")
    with pytest.raises(ValueError, match="valid: optimal, random"):
        make_defender("lazy")
    with pytest.raises(ValueError, match="piece counts must be >= 0"):
        game.as_states([1, -1, 0])
