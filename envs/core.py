"""The batched-core pattern shared by the Taxi family and Moving Bandits.

Each family implements one ``BatchedCore`` that steps ``num_envs`` environments at once with array operations only.
The single gymnasium environment of a family (``CoreEnv`` subclass) is that same core with ``num_envs=1``, and
``envs.vector.MultitaskVectorEnv`` drives it with ``num_envs=N``: single and batched dynamics cannot drift apart.

Conventions shared by every core:
- a task is an index into ``core.tasks``; ``requested_task[e] == -1`` means "draw a task uniformly at each reset";
- the time limit lives in the core (``max_episode_steps``): ``truncated`` is True on the step that reaches it unless
  that step also terminates the episode (termination wins, so a learner never bootstraps through a real ending);
- random start states come from ``envs._rng.CounterRNG`` draws; draw 0 is the task draw.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs._rng import CounterRNG, normalize_seeds

MODES = ("train", "test")
RANDOM_TASK = -1
TASK_DRAW = 0


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not valid; valid modes: {', '.join(MODES)}")
    return mode


def task_index(tasks: Sequence[str], task: str | int | None) -> int:
    """Index of ``task`` (a name, an index, or None for "random at each reset" -> -1); ValueError if unknown."""
    if task is None:
        return RANDOM_TASK
    if isinstance(task, (int, np.integer)) and not isinstance(task, bool):
        if 0 <= task < len(tasks):
            return int(task)
    elif isinstance(task, str) and task in tasks:
        return tasks.index(task)
    raise ValueError(f"task={task!r} is not valid; valid tasks: {', '.join(tasks)} (or None: random at each reset)")


def check_actions(actions: Any, num_envs: int, num_actions: int) -> np.ndarray:
    """Integer actions of shape (num_envs,) in [0, num_actions); a clear ValueError otherwise."""
    a = np.asarray(actions)
    if a.shape != (num_envs,):
        raise ValueError(f"expected {num_envs} actions (shape ({num_envs},)), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers, got dtype {a.dtype} ({a!r})")
    bad = (a < 0) | (a >= num_actions)
    if bad.any():
        raise ValueError(f"action {a[bad][0]!r} is out of range; valid actions: 0..{num_actions - 1}")
    return a.astype(np.int64, copy=False)


class BatchedCore(ABC):
    """``num_envs`` environments of one family as arrays; subclasses define the state and its dynamics."""

    tasks: tuple[str, ...]
    single_observation_space: gym.spaces.Box
    single_action_space: gym.spaces.Discrete
    max_episode_steps: int = 50

    def __init__(self, num_envs: int, task: str | int | None = None, mode: str = "train") -> None:
        if not (isinstance(num_envs, (int, np.integer)) and num_envs >= 1):
            raise ValueError(f"num_envs={num_envs!r} must be an integer >= 1")
        self.num_envs = int(num_envs)
        self.mode = check_mode(mode)
        self.requested_task = np.full(self.num_envs, task_index(self.tasks, task), dtype=np.int64)
        self.task = np.zeros(self.num_envs, dtype=np.int64)
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self.rng = CounterRNG(self.num_envs)
        self._all = np.arange(self.num_envs)

    def set_task(self, task: str | int | None, env_ids: np.ndarray | slice | None = None) -> None:
        """Use ``task`` for ``env_ids`` (default all) from their next reset on."""
        self.requested_task[slice(None) if env_ids is None else env_ids] = task_index(self.tasks, task)

    def reset(
        self, mask: np.ndarray | None = None, seed: int | Sequence[int | None] | None = None
    ) -> np.ndarray:
        """Start a new episode in the envs selected by ``mask`` (default all); returns every env's observation.

        ``seed`` follows gymnasium's vector convention over the selected envs (an int ``s`` gives ``s, s+1, ...``).
        """
        ids = self._all if mask is None else np.flatnonzero(mask)
        self.rng.begin_episode(ids, normalize_seeds(seed, len(ids)))
        requested = self.requested_task[ids]
        drawn = self.rng.integers(ids, TASK_DRAW, len(self.tasks))
        self.task[ids] = np.where(requested == RANDOM_TASK, drawn, requested)
        self.elapsed[ids] = 0
        self._reset_state(ids)
        return self.observe()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every env by one step: ``(obs, reward, terminated, truncated)`` arrays."""
        a = check_actions(actions, self.num_envs, int(self.single_action_space.n))
        reward, terminated = self._step_state(a)
        self.elapsed += 1
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        return self.observe(), reward, terminated, truncated

    @abstractmethod
    def _reset_state(self, ids: np.ndarray) -> None:
        """Draw start states for envs ``ids`` (``self.task`` already holds their tasks)."""

    @abstractmethod
    def _step_state(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply validated actions to every env; return float64 rewards and bool terminations."""

    @abstractmethod
    def observe(self) -> np.ndarray:
        """A fresh float32 array (num_envs, obs_dim) of the current observations."""


class CoreEnv(gym.Env):
    """A single gymnasium environment that is a family's ``BatchedCore`` with ``num_envs=1``.

    ``task=None`` draws a task uniformly at each reset (from the seeded per-episode draws); ``set_task`` takes
    effect at the next reset. ``info["task"]`` is the current task's name.
    """

    core_class: ClassVar[type[BatchedCore]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, task: str | None = None, mode: str = "train", render_mode: str | None = None,
                 **family_params: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not valid; valid: {self.metadata['render_modes']} or None"
            )
        self.core = self.core_class(1, task=task, mode=mode, **family_params)
        self.render_mode = render_mode
        self.observation_space = self.core.single_observation_space
        self.action_space = self.core.single_action_space
        self._obs: np.ndarray | None = None

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.core.tasks

    @property
    def mode(self) -> str:
        return self.core.mode

    @property
    def task(self) -> str:
        """The task of the current episode."""
        return self.core.tasks[int(self.core.task[0])]

    def set_task(self, task: str | None) -> None:
        """Use ``task`` (a name from ``tasks``, or None: random at each reset) from the next reset on."""
        self.core.set_task(task)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is None and not self.core.rng.seeded[0]:
            seed = int(self.np_random.integers(2**63))  # so a seeded np_random reproduces the episode
        obs = self.core.reset(seed=None if seed is None else [seed])
        return obs[0], {"task": self.task}

    def step(self, action: Any):
        if not self.action_space.contains(action):
            raise ValueError(f"action={action!r} is not valid; valid actions: integers 0..{self.action_space.n - 1}")
        obs, reward, terminated, truncated = self.core.step(np.array([action], dtype=np.int64))
        return obs[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), {"task": self.task}
