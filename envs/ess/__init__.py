"""Erdős–Selfridge–Spencer attacker-defender games (ESS paper; docs/spec/envs.md, "Erdős–Selfridge–Spencer games").

``game`` holds the batched rules, ``strategies`` the scripted players and ``play_games``, ``sampler`` the start states
of a chosen potential, ``envs`` the gymnasium environments and ``two_player`` the PettingZoo AEC version.
"""

from __future__ import annotations

import gymnasium as gym

from msol.envs.ess.envs import ESSAttackerEnv, ESSDefenderEnv
from msol.envs.ess.sampler import GEO_PS, sample_start_states
from msol.envs.ess.strategies import (
    ATTACKERS,
    DEFENDERS,
    GameRecord,
    PolicyAttacker,
    PolicyDefender,
    make_attacker,
    make_defender,
    play_games,
)
from msol.envs.ess.two_player import ESSTwoPlayerEnv, two_player_env

DEFENDER_ID = "msol/ESSDefender-v0"
ATTACKER_ID = "msol/ESSAttacker-v0"

__all__ = [
    "ATTACKERS",
    "ATTACKER_ID",
    "DEFENDERS",
    "DEFENDER_ID",
    "GEO_PS",
    "ESSAttackerEnv",
    "ESSDefenderEnv",
    "ESSTwoPlayerEnv",
    "GameRecord",
    "PolicyAttacker",
    "PolicyDefender",
    "make_attacker",
    "make_defender",
    "play_games",
    "register_ess",
    "sample_start_states",
    "two_player_env",
]


def register_ess() -> None:
    """Register both environments with gymnasium (idempotent); K ≤ 20 games end within K ≤ 20 steps, so no
    time limit is needed — every game ends on its own after at most K turns."""
    for env_id, entry_point in ((DEFENDER_ID, "msol.envs.ess.envs:ESSDefenderEnv"),
                                (ATTACKER_ID, "msol.envs.ess.envs:ESSAttackerEnv")):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)
