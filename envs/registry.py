"""Registers every msol environment with gymnasium under the ``msol/`` namespace (on ``import envs``).

The Taxi family and Moving Bandits keep their 50-step limit inside the env (so the batched cores have it too) and
are registered with ``max_episode_steps=None``; the Swimmer keeps Swimmer-v5's 1000 steps via TimeLimit.

Other modules add ids with ``register_env`` so that ``list_envs`` describes them; the ESS games come from
``msol.envs.ess.register_ess()``. The numpy-batched families also register a ``vector_entry_point``, so
``gymnasium.make_vec(id, num_envs=N)`` returns their batched env.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

NAMESPACE = "msol"
_DESCRIPTIONS: dict[str, str] = {}


def register_env(env_id: str, entry_point: str, description: str, **register_kwargs: Any) -> None:
    """``gymnasium.register`` (idempotent) plus a one-line description for ``list_envs``."""
    if not env_id.startswith(f"{NAMESPACE}/"):
        raise ValueError(f"env_id={env_id!r} must be in the {NAMESPACE}/ namespace")
    _DESCRIPTIONS[env_id] = description
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=entry_point, **register_kwargs)


# env id -> the module of its family's option probe (``follow_options``, ``nearest_goal``)
_OPTION_PROBES = {f"{NAMESPACE}/MovingBandits-v0": "msol.envs.moving_bandits"}


def option_probe(env_id: str) -> Any | None:
    """The module with ``env_id``'s option probe (each option followed alone on random layouts, the goal it ends
    nearest to), or None for envs without one; learners use it to measure whether their options differ."""
    module = _OPTION_PROBES.get(str(env_id))
    return importlib.import_module(module) if module else None


def list_envs() -> dict[str, str]:
    """Every registered ``msol/`` id -> a one-line description (ids registered elsewhere: their class docstring)."""
    listing = {}
    for env_id in sorted(i for i in gym.registry if i.startswith(f"{NAMESPACE}/")):
        description = _DESCRIPTIONS.get(env_id)
        if description is None:
            entry_point = gym.registry[env_id].entry_point
            creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
            description = (creator.__doc__ or str(entry_point)).strip().splitlines()[0]
        listing[env_id] = description
    return listing


_TAXI = "msol.envs.taxi:TaxiEnv"
_CORE_ENVS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("Taxi-v0", _TAXI, {}, "Taxi, the MSOL paper's 8x8 map: 12 pickup-dropoff tasks, one-hot obs (72), 6 actions"),
    ("Taxi8x8Moved-v0", _TAXI, {"grid": "8x8-moved"},
     "Taxi 8x8 with the four locations moved by one cell (transfer: MSOL Fig. 2e, Fig. 6 left)"),
    ("Taxi10x10-v0", _TAXI, {"grid": "10x10"}, "Taxi on the project's 10x10 map (obs 128), 12 tasks"),
    ("Taxi10x10Moved-v0", _TAXI, {"grid": "10x10-moved"},
     "Taxi 10x10 with the four locations moved by one cell (transfer: MSOL Fig. 2e, Fig. 6 right)"),
    ("DirectionalTaxi-v0", "msol.envs.directional_taxi:DirectionalTaxiEnv", {},
     "Directional Taxi 8x8: forward / rotate 90 degrees, one-hot obs (288), 5 actions, 12 tasks"),
    ("MovingBandits-v0", "msol.envs.moving_bandits:MovingBanditsEnv", {},
     "Moving Bandits (MLSH): reach the unobserved correct one of two goals; tasks goal0, goal1"),
)  # fmt: skip


@dataclass(frozen=True)
class _VectorEntry:
    """The ``vector_entry_point`` of a numpy-batched family: ``gymnasium.make_vec(<id>, num_envs=N)`` returns its
    batched :class:`~msol.envs.vector.MultitaskVectorEnv` (N task slots of one env each), not N copies in a
    ``SyncVectorEnv``. ``task`` is every env's task (None: one drawn at every reset); other keyword arguments are
    the family's (e.g. ``grid``, ``mode``)."""

    env_id: str

    def __call__(self, num_envs: int = 1, task: str | None = None, mode: str = "train", **env_kwargs: Any) -> Any:
        from msol.envs.vector import make_multitask_vector_env

        return make_multitask_vector_env(self.env_id, [task] * int(num_envs), envs_per_slot=1, mode=mode,
                                         vectorization_mode="numpy", **env_kwargs)


def _register_all() -> None:
    for name, entry_point, kwargs, description in _CORE_ENVS:
        env_id = f"{NAMESPACE}/{name}"
        register_env(env_id, entry_point, description, kwargs=kwargs, max_episode_steps=None,
                     vector_entry_point=_VectorEntry(env_id))
    register_env(
        f"{NAMESPACE}/DirectionalSwimmer-v0",
        "msol.envs.swimmer:DirectionalSwimmerEnv",
        "MuJoCo Swimmer-v5 rewarded along an unobserved direction: tasks up, down, left, right",
        max_episode_steps=1000,
    )
    importlib.import_module("msol.envs.ess").register_ess()


_register_all()
