"""The algorithm registry: ``cfg.algo.name`` -> the function that trains it.

Every algorithm, ours or a baseline, is a function ``(cfg, run) -> summary`` registered here, so the training
entry point, the run directory, logging, checkpoints and resume are shared by all of them. Another package adds
its own by declaring the module that registers them under the entry-point group :data:`ENTRY_POINT_GROUP`
(docs/extending.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from omegaconf import DictConfig

from msol.common.settings import AlgorithmSettings

TrainFn = Callable[[DictConfig, Any], Any]  # (cfg, run) -> summary; with populations (cfg, runs) -> summaries

ENTRY_POINT_GROUP = "msol.algorithms"  # other packages: ``name = "their_package.module"`` registers on import

SOFT_OPTIONS = "msol.soft_options.trainer"  # registers MSOL's learner and the algorithms built on it
BASELINES = "msol.baselines"  # each module or package directly under it registers its algorithms on import


@dataclass(frozen=True)
class AlgorithmSpec:
    name: str
    train: TrainFn
    action_spaces: tuple[str, ...]
    description: str
    devices: tuple[str, ...] = ("cpu",)  # "cuda" where the trainer puts its networks and batches on cfg.device
    # True: ``train(cfg, runs)`` trains a population (one run per member) and returns one summary per member
    populations: bool = False
    settings: type[AlgorithmSettings] | None = None  # the typed settings ``cfg.algo`` is checked against


_REGISTRY: dict[str, AlgorithmSpec] = {}
_loaded = False


def register_algorithm(
    name: str, *, action_spaces: tuple[str, ...] = ("discrete", "continuous"), description: str = "",
    devices: tuple[str, ...] = ("cpu",), populations: bool = False, settings: type[AlgorithmSettings] | None = None,
) -> Callable[[TrainFn], TrainFn]:
    """Register ``fn`` as the trainer of ``algo=<name>``; ``action_spaces`` lists what it can act in, ``devices``
    the kinds of ``cfg.device`` it honours (any other is refused, never silently ignored); ``populations``: ``fn``
    is ``(cfg, runs) -> summaries`` and trains ``population=S`` members in one process (``msol.common.population``);
    ``settings``: the dataclass of the algorithm's settings (``msol.common.settings``)."""

    def decorator(fn: TrainFn) -> TrainFn:
        _REGISTRY[name] = AlgorithmSpec(name, fn, tuple(action_spaces),
                                        description or (fn.__doc__ or "").strip().split("\n")[0], tuple(devices),
                                        populations, settings)
        return fn

    return decorator


def _plugin_modules() -> list[str]:
    """The modules whose import registers this package's algorithms: MSOL's learner and every module or package
    directly under ``msol.baselines`` (found on disk, so a new baseline needs no entry in a list here)."""
    spec = importlib.util.find_spec(BASELINES)
    found = pkgutil.iter_modules(list(spec.submodule_search_locations or [])) if spec else []
    return [SOFT_OPTIONS, *sorted(f"{BASELINES}.{m.name}" for m in found if not m.name.startswith("_"))]


def _load_plugins() -> None:
    """Import every module that registers algorithms (lazily: some pull in heavy optional code paths), then the
    other packages' under the entry-point group."""
    global _loaded
    if _loaded:
        return
    for module in _plugin_modules():
        importlib.import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except ImportError as exc:
            raise ImportError(f"the {ENTRY_POINT_GROUP} plugin {entry.name} = {entry.value!r} (package "
                              f"{entry.dist.name if entry.dist else '?'}) failed to import: {exc}") from exc
    _loaded = True


def available_algorithms() -> dict[str, AlgorithmSpec]:
    _load_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_algorithm(name: str) -> AlgorithmSpec:
    algos = available_algorithms()
    if name not in algos:
        raise KeyError(f"unknown algo {name!r}; valid: {', '.join(algos)}")
    return algos[name]
