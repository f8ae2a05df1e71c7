"""The learner's view of a batched multitask env: plain arrays in, a small typed record out.

It wraps ``msol.envs.vector.MultitaskVectorEnv`` (gymnasium ``VectorEnv`` API, SAME_STEP autoreset) and turns its
``infos`` dicts into the few arrays the learner reads (final observations for truncation bootstraps, finished
episodes' returns), so the training loop never parses gymnasium's info layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from msol import envs  # noqa: F401  (registers the msol/ ids)
from msol.common.device import env_tensor
from msol.envs.vector import make_multitask_vector_env


@dataclass
class StepOut:
    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: np.ndarray | None              # rows valid where ``terminated | truncated``
    episode_returns: list[tuple[int, float]]  # (env index, undiscounted return) of episodes that just ended

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(reward, terminated, truncated)`` on ``device`` in torch's default dtype, the form rollout storages
        keep."""
        return env_tensor(self.reward, device), env_tensor(self.terminated, device), env_tensor(self.truncated, device)

    def truncated_final_obs(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(env indices, their final observations)`` of time-limit cuts (to bootstrap from) on ``device``, or
        ``None``."""
        if not self.truncated.any():
            return None
        idx = np.flatnonzero(self.truncated)
        return (torch.as_tensor(idx, device=device),
                env_tensor(self.final_obs[idx], device))


def resolve_tasks(spec: Any, all_tasks: Sequence[str]) -> list[str]:
    """``"all"`` or a list of task names -> validated list of names."""
    if isinstance(spec, str):
        if spec == "all":
            return list(all_tasks)
        spec = [spec]
    tasks = list(spec) if isinstance(spec, (list, tuple, ListConfig)) else None
    if not tasks:
        raise ValueError(f"tasks={spec!r}: give 'all' or a non-empty list of: {', '.join(all_tasks)}")
    unknown = [t for t in tasks if t not in all_tasks]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; valid tasks: {', '.join(all_tasks)}")
    return [str(t) for t in tasks]


class MultitaskEnv:
    """``num_slots`` task slots × ``envs_per_slot`` envs; env ``e`` belongs to slot ``e // envs_per_slot``."""

    def __init__(self, vec, envs_per_slot: int, env_id: str | None = None) -> None:
        self.vec = vec
        self.env_id = env_id  # the gymnasium id it was made from (what env-specific probes are found by)
        self.envs_per_slot = envs_per_slot
        self.num_envs = vec.num_envs
        self.slot_of_env = np.arange(self.num_envs) // envs_per_slot
        obs_space, act_space = vec.single_observation_space, vec.single_action_space
        self.obs_dim = int(np.prod(obs_space.shape))
        self.continuous = not hasattr(act_space, "n")
        self.action_shape: tuple[int, ...] = tuple(act_space.shape) if self.continuous else ()
        self.action_dim = int(np.prod(act_space.shape)) if self.continuous else int(act_space.n)
        if self.continuous:
            self._low, self._high = act_space.low, act_space.high

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.vec.tasks)

    @property
    def slot_tasks(self) -> list[str]:
        return [self.vec.tasks[i] for i in self.vec.slot_tasks]

    def reset(self, seed: int) -> np.ndarray:
        obs, _ = self.vec.reset(seed=seed)
        return obs.reshape(self.num_envs, -1)

    def step(self, actions: np.ndarray) -> StepOut:
        if self.continuous:
            actions = np.clip(actions, self._low, self._high)
        obs, reward, terminated, truncated, infos = self.vec.step(actions)
        # Dense (num_envs, obs_dim) on steps where some env finished; rows of unfinished envs are unused.
        final_obs = infos.get("final_obs")
        episodes: list[tuple[int, float]] = []
        if "_episode" in infos and np.any(infos["_episode"]):
            idx = np.flatnonzero(infos["_episode"])
            returns = np.asarray(infos["episode"]["r"])[idx]
            episodes = list(zip(idx.tolist(), returns.astype(float).tolist()))
        return StepOut(obs.reshape(self.num_envs, -1), np.asarray(reward, dtype=np.float64),
                       np.asarray(terminated, dtype=bool), np.asarray(truncated, dtype=bool), final_obs, episodes)

    def assign_task(self, slot: int, task: str) -> tuple[np.ndarray, np.ndarray]:
        """Give ``slot`` a new task now: its envs restart; returns (their env indices, their new observations)."""
        self.vec.set_slot_task(slot, task)
        obs, _ = self.vec.reset_slots(slot)
        idx = np.flatnonzero(self.slot_of_env == slot)
        return idx, np.asarray(obs).reshape(self.num_envs, -1)[idx]

    def set_slot_tasks(self, tasks: Sequence[str]) -> None:
        for slot, task in enumerate(tasks):
            self.vec.set_slot_task(slot, task)

    def get_state(self) -> dict[str, torch.Tensor]:
        """Every array of the env (numpy backends, so CPU tensors): enough to continue bit-for-bit after a resume."""
        if not self.exact_state:
            return {}
        return {k: torch.as_tensor(v.copy(), device="cpu") for k, v in _arrays(self.vec, "").items()}

    def set_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`get_state`; gym-backed envs (MuJoCo) cannot be restored and restart their episodes."""
        if not self.exact_state or not state:
            return
        for key, value in state.items():
            owner, name = _resolve(self.vec, key)
            getattr(owner, name)[...] = value.cpu().numpy()
        self.vec._needs_reset = False

    @property
    def exact_state(self) -> bool:
        from msol.envs.core import BatchedCore

        return isinstance(self.vec.core, BatchedCore)

    def grid_observations(self):
        core = getattr(self.vec, "core", None)
        return core.grid_observations() if core is not None and hasattr(core, "grid_observations") else None

    def grid_locations(self) -> dict[str, tuple[int, int]]:
        """Named cells of a grid env's map (Taxi's pickup/drop-off letters), ``{}`` for other envs."""
        layout = getattr(getattr(self.vec, "core", None), "map", None)
        return dict(getattr(layout, "locations", {}))

    def close(self) -> None:
        self.vec.close()


_STATE_OWNERS = ("", "core", "core.rng")


def _arrays(root: Any, _: str) -> dict[str, np.ndarray]:
    """The numpy arrays held by the vector env, its core and the core's counter RNG, by dotted name."""
    out = {}
    for prefix in _STATE_OWNERS:
        owner = root
        for part in filter(None, prefix.split(".")):
            owner = getattr(owner, part)
        for name, value in vars(owner).items():
            if isinstance(value, np.ndarray) and name not in ("slot_of_env",):
                out[f"{prefix}.{name}" if prefix else name] = value
    return out


def _resolve(root: Any, key: str) -> tuple[Any, str]:
    *path, name = key.split(".")
    owner = root
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def make_env(cfg: DictConfig, slot_tasks: Sequence[str], *, mode: str, envs_per_slot: int, seed: int,
             transfer: bool = False) -> MultitaskEnv:
    """The configured env family with one task slot per entry of ``slot_tasks`` (``"__probe__"``: any task).

    ``transfer=True`` selects ``env.transfer_id``/``env.transfer_kwargs`` when the config sets them (e.g. Taxi with
    moved locations: options learned on one map, transfer on another).
    """
    env_id, kwargs_cfg = cfg.env.id, cfg.env.get("kwargs")
    if transfer and cfg.env.get("transfer_id"):
        env_id, kwargs_cfg = cfg.env.transfer_id, cfg.env.get("transfer_kwargs")
    kwargs = OmegaConf.to_container(kwargs_cfg, resolve=True) if kwargs_cfg else {}
    if list(slot_tasks) == ["__probe__"]:
        import gymnasium

        probe = gymnasium.make(str(env_id), **kwargs)
        tasks = list(probe.unwrapped.tasks)
        probe.close()
        slot_tasks = tasks[:1]
    vec = make_multitask_vector_env(str(env_id), list(slot_tasks), envs_per_slot=envs_per_slot, mode=mode,
                                    seed=seed, **kwargs)
    return MultitaskEnv(vec, envs_per_slot, env_id=str(env_id))
