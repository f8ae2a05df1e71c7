"""The attacker-defender game for two learning players, as a PettingZoo AEC environment.

AEC (agent-environment cycle) matches the game: the two players never move at once — the attacker proposes a split
(a level, as in ``ESSAttackerEnv``), then the defender destroys one set. Observations per agent are the same as in the
single-agent environments (attacker: the state; defender: concat(A, B), zeros while no split is pending). The game
is zero-sum: +1 to the winner, -1 to the loser, when it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers

from msol.envs.ess import game
from msol.envs.ess.sampler import GEO_PS, sample_start_states, target_units, validate_geo_ps

ATTACKER, DEFENDER = "attacker", "defender"


class ESSTwoPlayerEnv(AECEnv):
    metadata: ClassVar[dict[str, Any]] = {"name": "ess_attacker_defender_v0", "render_modes": ["ansi"], "is_parallelizable": False}

    def __init__(self, K: int = 10, potential: float = 0.99, geo_ps: Sequence[float] = GEO_PS,
                 render_mode: str | None = None) -> None:
        super().__init__()
        max_count = target_units(K, potential)
        self.K, self.potential = int(K), float(potential)
        self.geo_ps = tuple(float(p) for p in validate_geo_ps(geo_ps))
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; valid: None, 'ansi'")
        self.render_mode = render_mode
        self.possible_agents = [ATTACKER, DEFENDER]
        self.observation_spaces = {
            ATTACKER: gym.spaces.Box(0.0, float(max_count), shape=(self.K + 1,), dtype=np.float32),
            DEFENDER: gym.spaces.Box(0.0, float(max_count), shape=(2 * (self.K + 1),), dtype=np.float32),
        }
        self.action_spaces = {ATTACKER: gym.spaces.Discrete(self.K), DEFENDER: gym.spaces.Discrete(2)}
        self._rng = np.random.default_rng()
        self.board = np.zeros(self.K + 1, dtype=np.int64)
        self.split: tuple[np.ndarray, np.ndarray] | None = None

    def observation_space(self, agent: str) -> gym.spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gym.spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.board = sample_start_states(self.K, self.potential, 1, self._rng, self.geo_ps)[0]
        self.split = None
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self.agent_selection = ATTACKER

    def observe(self, agent: str) -> np.ndarray:
        if agent == ATTACKER:
            return self.board.astype(np.float32)
        if self.split is None:
            return np.zeros(2 * (self.K + 1), dtype=np.float32)
        return np.concatenate(self.split).astype(np.float32)

    def step(self, action) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        if not self.action_spaces[agent].contains(action):
            raise ValueError(f"{agent} action={action!r} is not in {self.action_spaces[agent]}")
        self._cumulative_rewards[agent] = 0.0
        self._clear_rewards()
        if agent == ATTACKER:
            A, B = game.level_split(self.board[None], np.asarray([action]), self._rng)
            self.split = (A[0], B[0])
            self.agent_selection = DEFENDER
        else:
            A, B = self.split
            self.board = game.play_turn(A, B, np.asarray(action))
            self.split = None
            self.agent_selection = ATTACKER
            outcome = int(game.winner(self.board))  # +1 defender, -1 attacker
            if outcome != 0:
                self.rewards = {DEFENDER: float(outcome), ATTACKER: float(-outcome)}
                self.terminations = {a: True for a in self.agents}
        self._accumulate_rewards()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return f"{self.agent_selection} to move; levels 0..{self.K}: {self.board.tolist()}"

    def close(self) -> None:
        pass


def two_player_env(**kwargs) -> AECEnv:
    """The two-player environment with PettingZoo's standard safety wrappers (bounds and call order enforced)."""
    env = ESSTwoPlayerEnv(**kwargs)
    env = wrappers.AssertOutOfBoundsWrapper(env)
    return wrappers.OrderEnforcingWrapper(env)
