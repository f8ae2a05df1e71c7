"""The batched-core pattern shared by the Taxi family and Moving Bandits.

Each family implements one ``BatchedCore`` that steps ``num_envs`` environments at once with array operations only.
The single gymnasium environment of a family (``CoreEnv`` subclass) is that same core with ``num_envs=1``, and
``msol.envs.vector.MultitaskVectorEnv`` drives it with ``num_envs=N``: single and batched dynamics cannot drift apart.

Conventions shared by every core:
- a task is an index into ``core.tasks``; ``requested_task[e] == -1`` means "draw a task uniformly at each reset";
- the time limit lives in the core (``max_episode_steps``): ``truncated`` is True on the step that reaches it unless
  that step also terminates the episode (termination wins, so a learner never bootstraps through a real ending);
- random start states come from ``msol.envs._rng.CounterRNG`` draws (``num_draws`` per episode); draw 0 is the task.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from msol.envs._rng import CounterRNG, normalize_seeds, uniform_integers

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
    raise ValueError(
        f"task={task!r} is not valid; valid tasks: {', '.join(tasks)} (or None: random at each reset)"
    )


def check_actions(actions: Any, num_envs: int, num_actions: int) -> np.ndarray:
    """Integer actions of shape (num_envs,) in [0, num_actions); a clear ValueError otherwise."""
    a = np.asarray(actions)
    if a.shape != (num_envs,):
        raise ValueError(f"expected {num_envs} actions (shape ({num_envs},)), got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers, got dtype {a.dtype} ({a!r})")
    # One comparison catches both ends: negative values are huge when viewed as unsigned.
    if (a.view(f"u{a.itemsize}") >= num_actions).any():
        bad = a[(a < 0) | (a >= num_actions)][0]
        raise ValueError(f"action {bad!r} is out of range; valid actions: 0..{num_actions - 1}")
    return a


class ArrayRecycler:
    """Hands out arrays of one shape, reusing one only when nothing outside the recycler references it.

    A batch of one-hot observations is large (1024 Taxi envs: 295 KB); allocating two fresh ones per step makes the
    allocator map fresh pages from the OS each time, which costs more than the whole step. An array is reused only
    when CPython's reference count shows no holder besides the recycler (a view, ``torch.from_numpy`` or a kept
    name all hold a reference), so a returned array is never overwritten while anyone can still see it.
    """

    def __init__(self, shape: tuple[int, ...], dtype: type, capacity: int = 8) -> None:
        self.shape, self.dtype, self.capacity = shape, dtype, capacity
        self._arrays: list[np.ndarray] = []

    def get(self) -> np.ndarray:
        """An array of ``shape`` with arbitrary content that no one else references."""
        for i in range(len(self._arrays)):
            # References: the list, and getrefcount's argument.
            if sys.getrefcount(self._arrays[i]) == 2:
                return self._arrays[i]
        array = np.empty(self.shape, self.dtype)
        if len(self._arrays) < self.capacity:
            self._arrays.append(array)
        return array


class BatchedCore(ABC):
    """``num_envs`` environments of one family as arrays; subclasses define the state and its dynamics."""

    tasks: tuple[str, ...]
    single_observation_space: gym.spaces.Box
    single_action_space: gym.spaces.Discrete
    max_episode_steps: int = 50
    num_draws: int = 1

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

    def reset(self, mask: np.ndarray | None = None, seed: int | Sequence[int | None] | None = None) -> None:
        """Start a new episode in the envs selected by ``mask`` (default all); ``observe()`` then shows it.

        ``seed`` follows gymnasium's vector convention over the selected envs (an int ``s`` gives ``s, s+1, ...``).
        """
        ids = self._all if mask is None else np.flatnonzero(mask)
        draws = self.rng.begin_episode(ids, self.num_draws, normalize_seeds(seed, len(ids)))
        task = self.requested_task[ids]
        random = task == RANDOM_TASK
        if random.any():
            task = np.where(random, uniform_integers(draws[:, TASK_DRAW], len(self.tasks)), task)
        self.task[ids] = task
        self.elapsed[ids] = 0
        self._reset_state(ids, draws)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance every env by one step: ``(reward, terminated, truncated)``; ``observe()`` gives the new obs.

        Observations are not built here so the vector env can reset finished envs first and build them once.
        """
        a = check_actions(actions, self.num_envs, int(self.single_action_space.n))
        reward, terminated = self._step_state(a)
        self.elapsed += 1
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        return reward, terminated, truncated

    @abstractmethod
    def _reset_state(self, ids: np.ndarray, draws: np.ndarray) -> None:
        """Set start states of envs ``ids`` from their uniform ``draws`` (``self.task`` holds their tasks)."""

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

    def __init__(
        self,
        task: str | None = None,
        mode: str = "train",
        render_mode: str | None = None,
        **family_params: Any,
    ) -> None:
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
        self.core.reset(seed=None if seed is None else [seed])
        return self.core.observe()[0], {"task": self.task}

    def step(self, action: Any):
        if not self.action_space.contains(action):
            raise ValueError(
                f"action={action!r} is not valid; valid actions: integers 0..{self.action_space.n - 1}"
            )
        reward, terminated, truncated = self.core.step(np.array([action], dtype=np.int64))
        return (
            self.core.observe()[0],
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {"task": self.task},
        )
