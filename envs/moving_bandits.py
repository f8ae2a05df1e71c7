"""Moving Bandits (MLSH paper; MSOL Fig. 2a; spec: envs.md "Moving Bandits").

The agent starts at (200, 200) with two goals drawn uniformly in [0, 400]^2 at every reset; it is rewarded 1 at every
step at which, after moving, it is strictly within distance 50 (Euclidean, ``< 50``, as in the authors' and MLSH's
code) of the CORRECT goal. Which goal is correct is the task and is not observed, so a task-blind policy can at best
commit to one goal (the "local minimum", about half the optimal return; see ``msol.envs.optimal``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from msol.envs.core import BatchedCore, CoreEnv

ARENA = 400.0
START = (200.0, 200.0)
STEP_SIZE = 20.0
GOAL_RADIUS = 50.0
# Action -> (dx, dy): 0 stay, 1 x+20, 2 x-20, 3 y+20, 4 y-20; no clipping to the arena.
MOVES = np.array([(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)], dtype=np.float64) * STEP_SIZE
GOAL_DRAWS = 1  # draws 1..4: goal0 x, goal0 y, goal1 x, goal1 y (draw 0 is the task, see envs.core)


class MovingBanditsCore(BatchedCore):
    """Batched Moving Bandits; tasks ``"goal0"`` / ``"goal1"`` (index of the rewarded goal)."""

    tasks = ("goal0", "goal1")
    single_action_space = gym.spaces.Discrete(len(MOVES))
    num_draws = 5  # task, goal0 x, goal0 y, goal1 x, goal1 y

    def __init__(self, num_envs: int, task: str | int | None = None, mode: str = "train") -> None:
        super().__init__(num_envs, task, mode)
        # Exact bounds: the agent can walk at most max_episode_steps * 20 away from the start in each axis.
        reach = self.max_episode_steps * STEP_SIZE
        low = np.array([START[0] - reach, START[1] - reach, 0, 0, 0, 0]) / ARENA
        high = np.array([START[0] + reach, START[1] + reach, ARENA, ARENA, ARENA, ARENA]) / ARENA
        self.single_observation_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32))
        self.position = np.zeros((self.num_envs, 2))
        self.goals = np.zeros((self.num_envs, 2, 2))  # (env, goal, xy)

    def _reset_state(self, ids: np.ndarray, draws: np.ndarray) -> None:
        self.position[ids] = START
        self.goals[ids] = draws[:, GOAL_DRAWS:].reshape(len(ids), 2, 2) * ARENA

    def _step_state(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.position += MOVES[actions]
        goal = self.goals[self._all, self.task]
        reached = np.sum((self.position - goal) ** 2, axis=1) < GOAL_RADIUS**2
        return reached.astype(np.float64), np.zeros(self.num_envs, dtype=bool)

    def observe(self) -> np.ndarray:
        obs = np.empty((self.num_envs, 6), dtype=np.float32)
        obs[:, :2] = self.position
        obs[:, 2:] = self.goals.reshape(self.num_envs, 4)
        obs /= np.float32(ARENA)
        return obs


class MovingBanditsEnv(CoreEnv):
    """Two goals, one rewarded; the agent sees both but not which (spec: envs.md "Moving Bandits").

    Args:
        task: ``"goal0"`` or ``"goal1"`` (the index of the rewarded goal), or ``None``: drawn uniformly at every
            reset (from the seeded per-episode draws).
        mode: "train" or "test" (identical: the paper has no separate test distribution; kept so every multitask
            env shares one constructor).

    Observation (float32, 6): agent x, y, goal0 x, y, goal1 x, y, each divided by 400. Actions ``Discrete(5)``:
    0 stay, 1 x+20, 2 x-20, 3 y+20, 4 y-20. Never terminates; ``truncated`` at step 50.
    """

    core_class = MovingBanditsCore
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, task: str | None = None, mode: str = "train", render_mode: str | None = None) -> None:
        super().__init__(task=task, mode=mode, render_mode=render_mode)

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the arena at 1 px per 4 units; goal discs (the rewarded one green), agent red."""
        if self.render_mode != "rgb_array":
            return None
        size = int(ARENA // 4)
        yy, xx = np.mgrid[0:size, 0:size] * 4.0
        img = np.full((size, size, 3), 245, dtype=np.uint8)
        core = self.core
        for g in range(2):
            gx, gy = core.goals[0, g]
            disc = (xx - gx) ** 2 + (yy - gy) ** 2 < GOAL_RADIUS**2
            img[disc] = (80, 190, 80) if g == int(core.task[0]) else (190, 190, 190)
        ax, ay = (np.clip(core.position[0], 0, ARENA - 4) // 4).astype(int)
        img[max(ay - 2, 0):ay + 3, max(ax - 2, 0):ax + 3] = (220, 40, 40)
        return img


# ---------------------------------------------------------------------------------------------------- option probe
# What learned options do here (found by the env's id: ``msol.envs.registry.option_probe``): each option followed
# alone from the start on random goal layouts, and the goal it ends nearest to. Learners give the choice of action;
# the layouts, the moves and the nearest goal are this env's.

# (observations [N, 6] as the env gives them, option [N]) -> action [N]
Chooser = Callable[[np.ndarray, np.ndarray], np.ndarray]


def follow_options(choose: Chooser, num_options: int, layouts: int = 64, steps: int = 30, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Every option followed alone from the start on ``layouts`` random goal layouts for ``steps`` steps:
    ``(paths [num_options, layouts, steps + 1, 2], goals [layouts, 2, 2])`` in arena units."""
    rng = np.random.default_rng(seed)
    goals = rng.uniform(0, ARENA, size=(layouts, 2, 2))
    pos = np.tile(np.asarray(START, dtype=np.float64), (num_options, layouts, 1))
    paths = [pos.copy()]
    option = np.repeat(np.arange(num_options), layouts)
    for _ in range(steps):
        obs = np.concatenate([pos.reshape(num_options * layouts, 2), np.tile(goals.reshape(layouts, 4),
                                                                              (num_options, 1))], axis=1)
        pos = pos + MOVES[choose(obs / ARENA, option)].reshape(num_options, layouts, 2)
        paths.append(pos.copy())
    return np.stack(paths, axis=2), goals


def nearest_goal(positions: np.ndarray, goals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index of the goal nearest to each position, its distance)``; positions ``[..., 2]``, goals ``[..., 2, 2]``
    (arena units)."""
    dist = np.linalg.norm(goals - positions[..., None, :], axis=-1)
    nearest = dist.argmin(axis=-1)
    return nearest, np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0]
