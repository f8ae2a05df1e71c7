"""The paper's measures of play, checked on scripted players whose answers we know."""

from __future__ import annotations

import math

import numpy as np
import pytest

from msol.baselines.ess.metrics import (
    attacker_metrics,
    defender_metrics,
    evaluate_attacker,
    evaluate_defender,
    play_defender,
)
from msol.envs.ess import game
from msol.envs.ess.strategies import OptimalDefender, RandomDefender


class PessimalDefender:
    def choose(self, A, B, rng):
        return 1 - game.optimal_defender_action(A, B)


def test_optimal_defender_scores_perfectly():
    m = evaluate_defender(OptimalDefender(), K=8, potential=0.99, attacker="mixture", n_games=300)
    assert m["win_rate"] == 1.0 and m["mean_reward"] == 1.0
    assert m["optimal_move_fraction"] == 1.0 and m["fatal_mistakes_per_game"] == 0.0
    assert len(m["accuracy_by_distance"]) == 8
    assert all(a == 1.0 or math.isnan(a) for a in m["accuracy_by_distance"])


def test_pessimal_defender_makes_fatal_mistakes_and_loses():
    m = evaluate_defender(PessimalDefender(), K=8, potential=0.99, attacker="optimal", n_games=300)
    assert m["optimal_move_fraction"] == 0.0
    assert m["win_rate"] < 0.05 and m["games_with_fatal_mistake"] > 0.9
    assert m["mean_reward"] == pytest.approx(2 * m["win_rate"] - 1)


def test_random_defender_sits_in_between_and_ties_are_excluded():
    record = play_defender(RandomDefender(), K=6, potential=0.9, attacker="optimal", n_games=2000)
    m = defender_metrics(record)
    assert 0.3 < m["optimal_move_fraction"] < 0.7
    ua, ub = game.potential_units(record.A), game.potential_units(record.B)
    ties = record.active & (ua == ub)
    assert ties.any()  # the optimal attacker often splits exactly in half ...
    assert m["decisive_move_fraction"] == pytest.approx(1 - ties.sum() / record.active.sum())  # ... not counted


def test_fatal_mistakes_counted_per_move():
    record = play_defender(PessimalDefender(), K=5, potential=0.95, attacker="optimal", n_games=50, seed=3)
    fatal = record.active & game.is_fatal(record.states[:-1], record.states[1:])
    assert defender_metrics(record)["fatal_mistakes_per_game"] == pytest.approx(fatal.sum() / 50)


def test_attacker_metrics_follow_theorem3():
    def best_level(states):
        return game.optimal_split_level(states.astype(np.int64))

    m = evaluate_attacker(best_level, K=8, potential=1.1, defender="optimal", n_games=300)
    assert m["win_rate"] == 1.0 and m["balanced_split_fraction"] == 1.0
    m = evaluate_attacker(lambda s: np.zeros(len(s), dtype=np.int64), K=8, potential=1.1, n_games=300)
    assert m["win_rate"] < 1.0 and m["balanced_split_fraction"] < 1.0
    assert set(attacker_metrics.__annotations__) >= {"record"}
