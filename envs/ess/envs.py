"""Gymnasium environments for one side of the attacker-defender game, against a configurable scripted opponent.

``ESSDefenderEnv``: observe concat(A, B), destroy A (0) or B (1). ``ESSAttackerEnv``: observe the state, choose a
split level ``l ∈ {0 … K-1}`` (Theorem 3's parametrisation; level K never holds a piece in a live game, so K
actions suffice). Rewards are +1 / -1 for the learning side's win / loss at the end, 0 otherwise (docs/spec/envs.md).

Observations are the raw piece counts as float32, bounded by the largest count the start-state sampler can produce
(``⌊φ*·2^K⌋``; counts only shrink or shift upwards during a game).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from msol.envs.ess import game
from msol.envs.ess.sampler import GEO_PS, sample_start_states, target_units, validate_geo_ps
from msol.envs.ess.strategies import Attacker, Defender, make_attacker, make_defender


class _ESSEnv(gym.Env):
    """Start states, bounds and rendering shared by both sides."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, K: int, potential: float, geo_ps: Sequence[float], render_mode: str | None) -> None:
        self.max_count = target_units(K, potential)  # validates K and potential
        self.K = int(K)
        self.potential = float(potential)
        self.geo_ps = tuple(float(p) for p in validate_geo_ps(geo_ps))
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r}; valid: None, 'ansi'")
        self.render_mode = render_mode
        self.state = np.zeros(self.K + 1, dtype=np.int64)

    def _box(self, size: int) -> gym.spaces.Box:
        return gym.spaces.Box(0.0, float(self.max_count), shape=(size,), dtype=np.float32)

    def _start(self, seed: int | None, options: dict[str, Any] | None) -> None:
        super().reset(seed=seed)
        start = (options or {}).get("start_state")
        if start is None:
            self.state = sample_start_states(self.K, self.potential, 1, self.np_random, self.geo_ps)[0]
            return
        state = game.as_states(start, self.K)
        if state.ndim != 1 or game.game_over(state) or state.max() > self.max_count:
            raise ValueError(
                f"options['start_state']={state.tolist()} must be one unfinished board (a piece left, none on "
                f"level K) with counts <= {self.max_count}")
        self.state = state.copy()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        return f"levels 0..{self.K}: {self.state.tolist()}  φ={float(game.potential(self.state)):.6f}"


class ESSDefenderEnv(_ESSEnv):
    """The defender against ``attacker`` (default: the reference 50/50 optimal / disjoint-support mixture)."""

    def __init__(
        self,
        K: int = 10,
        potential: float = 0.99,
        attacker: str | Attacker = "mixture",
        disjoint_prob: float = 0.5,
        geo_ps: Sequence[float] = GEO_PS,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(K, potential, geo_ps, render_mode)
        self.attacker = make_attacker(attacker, disjoint_prob=disjoint_prob) if attacker == "mixture" \
            else make_attacker(attacker)
        self.observation_space = self._box(2 * (self.K + 1))
        self.action_space = gym.spaces.Discrete(2)
        self.A = self.B = np.zeros(self.K + 1, dtype=np.int64)

    def _propose(self) -> np.ndarray:
        A, B = self.attacker.split(self.state[None], self.np_random)
        self.A, self.B = A[0], B[0]
        return np.concatenate([self.A, self.B]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return {"potential": float(game.potential(self.state)),
                "potential_A": float(game.potential(self.A)), "potential_B": float(game.potential(self.B))}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._start(seed, options)
        return self._propose(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r}; valid: 0 (destroy A) or 1 (destroy B)")
        before = self.state
        self.state = game.play_turn(self.A, self.B, np.asarray(action))
        outcome = int(game.winner(self.state))
        info = {"fatal_mistake": bool(game.is_fatal(before, self.state))}
        if outcome != 0:
            obs = np.concatenate([self.A, self.B]).astype(np.float32)  # the last split; nothing is left to split
            return obs, float(outcome), True, False, info | {"winner": "defender" if outcome > 0 else "attacker"}
        obs = self._propose()
        return obs, 0.0, False, False, info | self._info()


class ESSAttackerEnv(_ESSEnv):
    """The attacker (level-split actions) against ``defender`` (default: optimal)."""

    def __init__(
        self,
        K: int = 10,
        potential: float = 1.1,
        defender: str | Defender = "optimal",
        geo_ps: Sequence[float] = GEO_PS,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(K, potential, geo_ps, render_mode)
        self.defender = make_defender(defender)
        self.observation_space = self._box(self.K + 1)
        self.action_space = gym.spaces.Discrete(self.K)

    def _obs(self) -> np.ndarray:
        return self.state.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._start(seed, options)
        return self._obs(), {"potential": float(game.potential(self.state))}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r}; valid: a split level in [0, {self.K - 1}]")
        A, B = game.level_split(self.state[None], np.asarray([action]), self.np_random)
        destroy = self.defender.choose(A, B, self.np_random)
        self.state = game.play_turn(A, B, np.asarray(destroy))[0]
        outcome = int(game.winner(self.state))
        info = {"potential": float(game.potential(self.state)),
                "balanced_split": bool(min(game.potential(A)[0], game.potential(B)[0]) >= 0.5)}
        if outcome != 0:
            return self._obs(), float(-outcome), True, False, info
        return self._obs(), 0.0, False, False, info
