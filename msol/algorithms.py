"""The algorithm registry: ``cfg.algo.name`` -> the function that trains it.

Every algorithm, ours or a baseline, is a function ``(cfg, run) -> summary`` registered here, so the training
entry point, the run directory, logging, checkpoints and resume are shared by all of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

TrainFn = Callable[[DictConfig, Any], Any]  # (cfg, run) -> summary; with populations (cfg, runs) -> summaries

# Modules whose import registers algorithms (imported lazily: some pull in heavy optional code paths).
_PLUGIN_MODULES: tuple[str, ...] = (
    "msol.trainer",
    "msol.baselines.trust_pcl",
    "msol.baselines.trpo",
    "msol.baselines.ess",
    "msol.baselines.mlsh",
    "msol.baselines.option_critic",
)


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    train: TrainFn
    action_spaces: tuple[str, ...]
    description: str
    devices: tuple[str, ...] = ("cpu",)  # "cuda" where the trainer puts its networks and batches on cfg.device
    # True: ``train(cfg, runs)`` trains a population (one run per member) and returns one summary per member
    populations: bool = False


_REGISTRY: dict[str, AlgorithmSpec] = {}
_loaded = False


def register_algorithm(
    name: str, *, action_spaces: tuple[str, ...] = ("discrete", "continuous"), description: str = "",
    devices: tuple[str, ...] = ("cpu",), populations: bool = False,
) -> Callable[[TrainFn], TrainFn]:
    """Register ``fn`` as the trainer of ``algo=<name>``; ``action_spaces`` lists what it can act in, ``devices``
    the kinds of ``cfg.device`` it honours (any other is refused, never silently ignored); ``populations``: ``fn``
    is ``(cfg, runs) -> summaries`` and trains ``population=S`` members in one process (``msol.population``)."""

    def decorator(fn: TrainFn) -> TrainFn:
        _REGISTRY[name] = AlgorithmSpec(name, fn, tuple(action_spaces),
                                        description or (fn.__doc__ or "").strip().split("\n")[0], tuple(devices),
                                        populations)
        return fn

    return decorator


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for module in _PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # A plugin package that is not written yet is simply absent; a missing dependency inside it is a bug.
            if exc.name is None or not module.startswith(exc.name):
                raise
    _loaded = True


def available_algorithms() -> dict[str, AlgorithmSpec]:
    _load_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_algorithm(name: str) -> AlgorithmSpec:
    algos = available_algorithms()
    if name not in algos:
        raise KeyError(f"unknown algo {name!r}; valid: {', '.join(algos)}")
    return algos[name]
