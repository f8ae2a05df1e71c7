"""One vector environment for many tasks at once: ``MultitaskVectorEnv``.

Layout: ``num_slots`` task slots x ``envs_per_slot`` environments; env ``e`` belongs to slot
``e // envs_per_slot`` and runs that slot's task. A slot's task can be re-assigned at any time
(``set_slot_task``); it takes effect at each of the slot's envs' next reset (an autoreset, or an immediate
``reset_slots``). A slot task of ``None`` (index -1 in ``slot_tasks``) draws a task uniformly at every reset.

Backends, chosen by ``make_multitask_vector_env(vectorization_mode=...)``:
- ``"numpy"`` (the default for the Taxi family and Moving Bandits): the family's ``BatchedCore`` with
  ``num_envs = num_slots * envs_per_slot``; pure array code, no Python loop over environments, and the very same
  code as the single environments, so same seeds and same actions give the same trajectories.
- ``"sync"`` / ``"async"`` (the default for anything else, e.g. MuJoCo): gymnasium's ``SyncVectorEnv`` /
  ``AsyncVectorEnv`` over ``gymnasium.make(env_id, mode=mode, **env_kwargs)``. The env must expose the multitask
  protocol: ``tasks`` (tuple of names), ``task`` (current task name) and ``set_task(name | None)`` (next reset).

Autoreset: gymnasium's ``AutoresetMode.SAME_STEP`` (``metadata["autoreset_mode"]``). On a step that terminates or
truncates an env, the returned observation is already its next episode's first observation, and

- ``infos["final_obs"]`` (float32 array, (num_envs, obs_dim)) holds the observation the step reached, with mask
  ``infos["_final_obs"]``. Unlike gymnasium's object array, it is dense: rows of envs that did not finish equal the
  returned observation, so ``infos.get("final_obs", obs)`` is "the next observation" for bootstrapping everywhere.
  The key is present only on steps where some env finished (gymnasium's convention).
- ``infos["episode"] = {"r", "l", "t"}`` and ``infos["_episode"]`` follow gymnasium's ``RecordEpisodeStatistics``
  layout (return, length, wall-clock seconds; 0 where the mask is False). Do not wrap this env in
  ``RecordEpisodeStatistics`` as well.
- ``infos["task"]`` (int array, every step and reset, with mask ``infos["_task"]``) is the task index of the episode
  the step belongs to, i.e. the task that produced this step's reward and ``final_obs``. The task of the returned
  observation (possibly a new one after an autoreset) is ``env.task_of_env``.
- gym backends also pass through the wrapped envs' step info keys (about the step taken).

Seeding follows gymnasium: ``reset(seed=s)`` seeds env ``e`` with ``s + e`` (a list gives one seed per env);
``reset()`` continues each env's stream. Env ``e`` of the numpy backend reproduces a single environment reset with
seed ``s + e``, then ``reset()`` after each episode, given the same task and actions.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

import msol.envs.registry  # noqa: F401  (registers the msol/ ids that the factory looks up)
from msol.envs._rng import normalize_seeds
from msol.envs.core import BatchedCore, CoreEnv, check_actions, check_mode, task_index

VECTORIZATION_MODES = ("auto", "numpy", "sync", "async")


class MultitaskVectorEnv(VectorEnv):
    """``num_slots`` task slots x ``envs_per_slot`` envs over a batched backend; see the module docstring.

    Args:
        core: the backend: a ``BatchedCore`` or ``GymVectorCore`` with ``num_envs == len(slot_tasks) *
            envs_per_slot``.
        slot_tasks: one task per slot (name, index into ``core.tasks``, or None: random at each reset).
        envs_per_slot: envs per slot.
        seed: if given, the first ``reset()`` without a seed uses it, and the action space is seeded with it.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        core: BatchedCore | GymVectorCore,
        slot_tasks: Sequence[str | int | None],
        envs_per_slot: int,
        seed: int | None = None,
    ) -> None:
        _check_layout(slot_tasks, envs_per_slot)
        if core.num_envs != len(slot_tasks) * envs_per_slot:
            raise ValueError(
                f"core has {core.num_envs} envs but {len(slot_tasks)} slots x {envs_per_slot} envs were requested"
            )
        self.core = core
        self.num_envs = core.num_envs
        self.num_slots = len(slot_tasks)
        self.envs_per_slot = int(envs_per_slot)
        self.tasks: tuple[str, ...] = tuple(core.tasks)
        self.slot_of_env = np.arange(self.num_envs) // self.envs_per_slot
        self.single_observation_space = core.single_observation_space
        self.single_action_space = core.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = dict(self.metadata)
        self._slot_tasks = np.zeros(self.num_slots, dtype=np.int64)
        for slot, task in enumerate(slot_tasks):
            self.set_slot_task(slot, task)
        self._default_seed = seed
        if seed is not None:
            self.action_space.seed(seed)
        self._returns = np.zeros(self.num_envs)  # episode lengths: core.elapsed
        self._start_times = np.zeros(self.num_envs)
        self._needs_reset = True

    # --- slots --------------------------------------------------------------------------------------------------
    @property
    def slot_tasks(self) -> np.ndarray:
        """Task index per slot (-1: drawn at each reset); a copy."""
        return self._slot_tasks.copy()

    @property
    def task_of_env(self) -> np.ndarray:
        """Task index of each env's current episode (the task of the last returned observation); a copy."""
        return self.core.task.copy()

    def set_slot_task(self, slot: int, task: str | int | None) -> None:
        """Give ``slot`` a new task: each of its envs switches at its next reset (call ``reset_slots`` for now)."""
        self._check_slot(slot)
        index = task_index(self.tasks, task)
        self._slot_tasks[slot] = index
        self.core.set_task(task, np.flatnonzero(self.slot_of_env == slot))

    def reset_slots(self, slots: int | Sequence[int]) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env of ``slots`` now (their unfinished episodes are dropped from the statistics)."""
        slots = [slots] if isinstance(slots, (int, np.integer)) else list(slots)
        for slot in slots:
            self._check_slot(slot)
        return self.reset(options={"reset_mask": np.isin(self.slot_of_env, slots)})

    def _check_slot(self, slot: int) -> None:
        if not (isinstance(slot, (int, np.integer)) and 0 <= slot < self.num_slots):
            raise ValueError(f"slot={slot!r} is not valid; valid slots: 0..{self.num_slots - 1}")

    # --- gymnasium VectorEnv API --------------------------------------------------------------------------------
    def reset(
        self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all envs, or those of ``options["reset_mask"]`` (a bool array of shape (num_envs,))."""
        mask = None
        if options and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with a True value, "
                    f"got {mask!r}"
                )
        if seed is None and self._needs_reset and self._default_seed is not None:
            seed = self._default_seed
        super().reset(seed=seed if isinstance(seed, (int, np.integer)) else None)
        selected = np.ones(self.num_envs, dtype=bool) if mask is None else mask
        seeds = normalize_seeds(seed, self.num_envs)
        chosen = None if seeds is None else [None if s < 0 else int(s) for s in seeds[selected]]
        self.core.reset(mask, seed=chosen)
        obs = self.core.observe()
        self._returns[selected] = 0.0
        self._start_times[selected] = time.perf_counter()
        if mask is None:
            self._needs_reset = False
        return obs, self._task_info(self.core.task)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("MultitaskVectorEnv.step() called before reset()")
        reward, terminated, truncated = self.core.step(actions)
        self._returns += reward
        infos = self._task_info(self.core.task)
        if isinstance(self.core, GymVectorCore):
            infos = {**self.core.step_infos, **infos}
        done = terminated | truncated
        if done.any():
            ids = np.flatnonzero(done)
            now = time.perf_counter()
            infos["final_obs"], infos["_final_obs"] = self.core.observe(), done
            episode = {
                "r": np.zeros(self.num_envs),
                "l": np.zeros(self.num_envs, dtype=np.int64),
                "t": np.zeros(self.num_envs),
            }
            episode["r"][ids] = self._returns[ids]
            episode["l"][ids] = self.core.elapsed[ids]
            episode["t"][ids] = np.round(now - self._start_times[ids], 6)
            infos["episode"], infos["_episode"] = episode, done
            self.core.reset(done)
            self._returns[ids] = 0.0
            self._start_times[ids] = now
        obs = self.core.observe()
        return obs, reward, terminated, truncated, infos

    def _task_info(self, task: np.ndarray) -> dict[str, Any]:
        return {"task": task.copy(), "_task": np.ones(self.num_envs, dtype=bool)}

    def close_extras(self, **kwargs: Any) -> None:
        if isinstance(self.core, GymVectorCore):
            self.core.vector_env.close(**kwargs)


def _check_layout(slot_tasks: Sequence[Any], envs_per_slot: int) -> None:
    if not (isinstance(envs_per_slot, (int, np.integer)) and envs_per_slot >= 1):
        raise ValueError(f"envs_per_slot={envs_per_slot!r} must be an integer >= 1")
    if isinstance(slot_tasks, str) or len(slot_tasks) < 1:
        raise ValueError(f"slot tasks must be a non-empty sequence of task names, got {slot_tasks!r}")


class TaskSelector(gym.Wrapper):
    """Makes ``set_task`` reachable per env through ``VectorEnv.set_attr("pending_task", [...])``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._pending_task: str | None = None

    @property
    def pending_task(self) -> str | None:
        return self._pending_task

    @pending_task.setter
    def pending_task(self, task: str | None) -> None:
        self._pending_task = task
        self.env.unwrapped.set_task(task)


def _make_task_env(env_id: str, mode: str, env_kwargs: dict[str, Any]) -> gym.Env:
    return TaskSelector(gym.make(env_id, mode=mode, **env_kwargs))


class GymVectorCore:
    """The backend protocol of ``MultitaskVectorEnv`` over gymnasium's Sync/AsyncVectorEnv (autoreset DISABLED:
    ``MultitaskVectorEnv`` resets finished envs itself, through ``reset_mask``)."""

    def __init__(
        self, env_id: str, num_envs: int, mode: str = "train", asynchronous: bool = False, **env_kwargs: Any
    ) -> None:
        fns = [partial(_make_task_env, env_id, mode, env_kwargs) for _ in range(num_envs)]
        vector_class = AsyncVectorEnv if asynchronous else SyncVectorEnv
        self.vector_env = vector_class(fns, autoreset_mode=AutoresetMode.DISABLED)
        self.num_envs = num_envs
        self.tasks: tuple[str, ...] = tuple(self.vector_env.get_attr("tasks")[0])
        self.single_observation_space = self.vector_env.single_observation_space
        self.single_action_space = self.vector_env.single_action_space
        self.requested_task = np.full(num_envs, -1, dtype=np.int64)
        self.task = np.zeros(num_envs, dtype=np.int64)
        self.elapsed = np.zeros(num_envs, dtype=np.int64)
        self.step_infos: dict[str, Any] = {}
        self._obs: np.ndarray | None = None  # set by reset

    def set_task(self, task: str | int | None, env_ids: np.ndarray) -> None:
        self.requested_task[env_ids] = task_index(self.tasks, task)
        names = [None if t < 0 else self.tasks[t] for t in self.requested_task]
        self.vector_env.set_attr("pending_task", names)

    def reset(self, mask: np.ndarray | None = None, seed: Sequence[int | None] | None = None) -> None:
        selected = np.ones(self.num_envs, dtype=bool) if mask is None else mask
        seeds: list[int | None] = [None] * self.num_envs
        if seed is not None:
            for env, s in zip(np.flatnonzero(selected), seed, strict=True):
                seeds[env] = s
        options = None if mask is None else {"reset_mask": mask}
        self._obs, _ = self.vector_env.reset(seed=seeds, options=options)
        self.elapsed[selected] = 0
        self.task = np.array([self.tasks.index(t) for t in self.vector_env.get_attr("task")], dtype=np.int64)

    def observe(self) -> np.ndarray:
        """The latest observations (gymnasium's vector envs return a fresh array per call)."""
        return self._obs

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        space = self.single_action_space
        if isinstance(space, gym.spaces.Discrete):
            check_actions(np.asarray(actions) - space.start, self.num_envs, int(space.n))
        elif np.shape(actions) != (self.num_envs, *space.shape):
            raise ValueError(
                f"expected actions of shape {(self.num_envs, *space.shape)}, got {np.shape(actions)}"
            )
        self._obs, reward, terminated, truncated, self.step_infos = self.vector_env.step(actions)
        self.elapsed += 1
        # The numpy cores' convention: termination wins over a simultaneous time limit.
        return reward.astype(np.float64), terminated, truncated & ~terminated


def _core_class(env_id: str) -> type[BatchedCore] | None:
    """The numpy core behind a registered id, or None if the id is not a ``CoreEnv``."""
    try:
        spec = gym.spec(env_id)
    except gym.error.Error as error:
        from msol.envs.registry import list_envs

        raise ValueError(
            f"env_id={env_id!r} is not registered ({error}); msol ids: {', '.join(list_envs())}"
        ) from None
    creator = load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    if isinstance(creator, type) and issubclass(creator, CoreEnv):
        return creator.core_class
    return None


def make_multitask_vector_env(
    env_id: str,
    tasks: Sequence[str | None],
    envs_per_slot: int,
    mode: str = "train",
    seed: int = 0,
    vectorization_mode: str = "auto",
    **env_kwargs: Any,
) -> MultitaskVectorEnv:
    """A ``MultitaskVectorEnv`` with one slot per entry of ``tasks`` (None: random task at each reset).

    Args:
        env_id: a registered id, e.g. "msol/Taxi-v0" (see ``msol.envs.list_envs()``).
        tasks: the task of each slot; ``len(tasks)`` is the number of slots.
        envs_per_slot: environments per slot (``num_envs = len(tasks) * envs_per_slot``).
        mode: "train" or "test" start distribution.
        seed: seed of the first ``reset()`` (env ``e`` gets ``seed + e``) and of the action space.
        vectorization_mode: "auto" (numpy core when the id has one, else "sync"), "numpy", "sync" or "async".
        **env_kwargs: family parameters (e.g. ``grid="10x10"`` for the Taxi family), merged over the
            registration's kwargs.
    """
    if vectorization_mode not in VECTORIZATION_MODES:
        raise ValueError(
            f"vectorization_mode={vectorization_mode!r} is not valid; valid: {', '.join(VECTORIZATION_MODES)}"
        )
    check_mode(mode)
    if "task" in env_kwargs:
        raise ValueError("pass tasks through `tasks` (one per slot), not env_kwargs['task']")
    _check_layout(tasks, envs_per_slot)
    num_envs = len(tasks) * int(envs_per_slot)
    core_class = _core_class(env_id)
    if vectorization_mode == "numpy" and core_class is None:
        raise ValueError(f"{env_id} has no numpy core; use vectorization_mode='sync' or 'async'")
    if core_class is not None and vectorization_mode in ("auto", "numpy"):
        kwargs = {**gym.spec(env_id).kwargs, **env_kwargs}
        valid = set(inspect.signature(core_class.__init__).parameters) - {"self", "num_envs", "task", "mode"}
        unknown = set(kwargs) - valid
        if unknown:
            raise ValueError(
                f"unknown env_kwargs {sorted(unknown)} for {env_id}; valid: {sorted(valid) or 'none'}"
            )
        core: BatchedCore | GymVectorCore = core_class(num_envs, mode=mode, **kwargs)
    else:
        core = GymVectorCore(env_id, num_envs, mode, vectorization_mode == "async", **env_kwargs)
    return MultitaskVectorEnv(core, tasks, envs_per_slot, seed=seed)
