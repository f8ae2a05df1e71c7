"""Alternating multi-agent training (ESS paper §6): a learned attacker and a learned defender take turns to train,
each against the other's current (frozen, sampling) policy.

The two single-agent environments play the opponent's part: the defender's environment asks the attacker network
for a split level, the attacker's environment asks the defender network which set to destroy — the same game as
the two-player PettingZoo environment, seen from one side at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm

from msol.baselines.ess.agents import predictor
from msol.envs.ess import ESSAttackerEnv, ESSDefenderEnv, PolicyAttacker, PolicyDefender

SIDES = ("defender", "attacker")

# (env factory, env for input statistics) -> model
MakeModel = Callable[[Callable[[], gym.Env], gym.Env], BaseAlgorithm]


def build_players(K: int, potential: float, make_model: MakeModel) -> dict[str, BaseAlgorithm]:
    """A defender and an attacker whose environments use each other as the opponent.

    Input statistics come from scripted stand-ins for the untrained opponents (uniformly random split levels,
    uniformly random defender), which is what the freshly initialised networks play like.
    """
    players: dict[str, BaseAlgorithm] = {}

    def learned_attacker(states):
        return predictor(players["attacker"], deterministic=False)(states)

    def learned_defender(obs):
        return predictor(players["defender"], deterministic=False)(obs)

    players["defender"] = make_model(
        lambda: ESSDefenderEnv(K=K, potential=potential, attacker=PolicyAttacker(learned_attacker)),
        ESSDefenderEnv(K=K, potential=potential, attacker="random_level"),
    )
    players["attacker"] = make_model(
        lambda: ESSAttackerEnv(K=K, potential=potential, defender=PolicyDefender(learned_defender)),
        ESSAttackerEnv(K=K, potential=potential, defender="random"),
    )
    return players


def alternate(
    players: dict[str, BaseAlgorithm],
    *,
    phases: int,
    phase_frames: int,
    start_phase: int = 0,
    callback: Callable[[int, str], Any] | None = None,
    on_phase_end: Callable[[int, str], None] | None = None,
) -> None:
    """Train phases ``start_phase … phases-1``: even phases the defender, odd phases the attacker.

    A side's phase ends when it has trained ``phase_frames`` per phase so far, counted from its own step counter, so
    a phase resumed from a mid-phase checkpoint only trains what is left. ``callback(phase, side)`` makes the SB3
    callback of a phase; ``on_phase_end(phase, side)`` runs after it.
    """
    for phase in range(start_phase, phases):
        side = SIDES[phase % 2]
        model = players[side]
        remaining = (phase // 2 + 1) * phase_frames - int(model.num_timesteps)
        if remaining > 0:
            model.learn(remaining, callback=callback(phase, side) if callback else None, reset_num_timesteps=False)
        if on_phase_end is not None:
            on_phase_end(phase, side)
