"""The ESS paper's measures of play, computed on a batch of whole games (docs/spec/envs.md, "Metrics from the paper").

- win rate (the paper plots reward = 2·win − 1);
- fraction of ground-truth-correct defender moves, ties (φ(A) = φ(B), where both moves are optimal) excluded;
- fatal mistakes: defender moves from a state with φ < 1 to one with φ ≥ 1 (a won game thrown away);
- where mistakes happen: accuracy of decisive moves by distance to the end of the game (1 = the last move).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from msol.envs.ess import game
from msol.envs.ess.sampler import GEO_PS, sample_start_states
from msol.envs.ess.strategies import (
    Attacker,
    Defender,
    GameRecord,
    PolicyAttacker,
    PolicyDefender,
    make_attacker,
    make_defender,
    play_games,
)

Predict = Callable[[np.ndarray], np.ndarray]


def defender_metrics(record: GameRecord) -> dict[str, float | list[float]]:
    """Win rate, move accuracy, fatal mistakes and accuracy by distance to the end, from the defender's side."""
    active = record.active
    ua, ub = game.potential_units(record.A), game.potential_units(record.B)
    decisive = active & (ua != ub)
    correct = decisive & ((record.actions == game.DESTROY_A) == (ua > ub))
    fatal = active & game.is_fatal(record.states[:-1], record.states[1:])
    turn = np.arange(active.shape[0])[:, None]
    distance = record.lengths[None, :] - turn  # 1 = the game's last move
    K = record.states.shape[-1] - 1
    by_distance = []
    for d in range(1, K + 1):
        at_d = decisive & (distance == d)
        by_distance.append(float(correct[at_d].mean()) if at_d.any() else float("nan"))
    wins = record.winner == 1
    return {
        "win_rate": float(wins.mean()),
        "mean_reward": float((2 * wins - 1).mean()),
        "optimal_move_fraction": float(correct.sum() / max(decisive.sum(), 1)),
        "decisive_move_fraction": float(decisive.sum() / max(active.sum(), 1)),
        "fatal_mistakes_per_game": float(fatal.sum() / len(wins)),
        "games_with_fatal_mistake": float(fatal.any(axis=0).mean()),
        "mean_game_length": float(record.lengths.mean()),
        "accuracy_by_distance": by_distance,
    }


def attacker_metrics(record: GameRecord) -> dict[str, float]:
    """Win rate and how often a split from a winnable state (φ ≥ 1) kept both sets at φ ≥ ½ (Theorem 3)."""
    K = record.states.shape[-1] - 1
    winnable = record.active & (game.potential_units(record.states[:-1]) >= 1 << K)
    half = 1 << (K - 1)
    balanced = winnable & (np.minimum(game.potential_units(record.A), game.potential_units(record.B)) >= half)
    wins = record.winner == -1
    return {
        "win_rate": float(wins.mean()),
        "mean_reward": float((2 * wins - 1).mean()),
        "balanced_split_fraction": float(balanced.sum() / max(winnable.sum(), 1)),
        "mean_game_length": float(record.lengths.mean()),
    }


def play_defender(
    defender: Predict | Defender, K: int, potential: float, attacker: str | Attacker = "mixture",
    n_games: int = 1000, seed: int = 0, geo_ps=GEO_PS,
) -> GameRecord:
    """``n_games`` fresh games (start states of ``potential``) of ``defender`` — a policy's ``obs -> action`` or a
    strategy — against ``attacker``."""
    rng = np.random.default_rng(seed)
    player = defender if hasattr(defender, "choose") else PolicyDefender(defender)
    return play_games(sample_start_states(K, potential, n_games, rng, geo_ps), make_attacker(attacker), player, rng)


def evaluate_defender(predict: Predict | Defender, K: int, potential: float, attacker: str | Attacker = "mixture",
                      n_games: int = 1000, seed: int = 0, geo_ps=GEO_PS) -> dict[str, float | list[float]]:
    return defender_metrics(play_defender(predict, K, potential, attacker, n_games, seed, geo_ps))


def evaluate_attacker(predict: Predict | Attacker, K: int, potential: float, defender: str | Defender = "optimal",
                      n_games: int = 1000, seed: int = 0, geo_ps=GEO_PS) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    player = predict if hasattr(predict, "split") else PolicyAttacker(predict)
    record = play_games(sample_start_states(K, potential, n_games, rng, geo_ps), player, make_defender(defender), rng)
    return attacker_metrics(record)
