"""Validate a composed config before anything runs.

Each problem becomes one line naming the key, the bad value and what is valid, so a typo in a sweep fails in a
second with exit status 2 instead of after an hour of training. Each rule lives where its key is defined: the keys
every run has here (``RUN_RULES``, by full path), the env's hyper-parameters in ``msol.common.env_settings``, an
algorithm's keys in its typed settings (``msol.common.settings``: added keys, missing settings, values, settings
the rest of the config makes it ignore), the env's constructor arguments in the env (made here with them). A value
without a rule must keep the type of its shipped default (``defaults=``, the config composed without value
overrides, which the CLI passes).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from msol.common.env_settings import HPARAM_RULES
from msol.common.rules import (
    BOOL,
    DEVICE,
    FRAMES,
    NAME,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    TASKS,
    Rule,
    choice,
    is_int,
    is_number,
    optional,
    text,
)
from msol.common.settings import AlgorithmSettings, settings_problems


class ConfigError(ValueError):
    """The config cannot run; the message lists every problem found, one per line."""


_PATH: Rule = text("must be the path of a run directory")
_TEXT: Rule = (lambda v: isinstance(v, str), "must be a string")
# The keys every run has, whatever its algorithm, by full path. An algorithm's own keys (``algo.*``) are checked by
# its typed settings (msol.common.settings), the env's hyper-parameters by msol.common.env_settings, the env's
# constructor arguments (``env.kwargs``) by the env when it is made.
RUN_RULES: dict[str, Rule] = {
    "seed": NON_NEGATIVE_INT,
    "population": POSITIVE_INT,
    "device": DEVICE,
    "torch_threads": POSITIVE_INT,
    "resume": optional(_PATH),
    "init_from": optional(_PATH),
    "run_dir": optional(text("must be a directory path")),
    "checkpoint_interval_s": POSITIVE,
    "budget_scale": POSITIVE,
    "budget.name": NAME,
    "eval.interval_frames_per_task": FRAMES,
    "eval.episodes_per_slot": POSITIVE_INT,
    "eval.greedy": BOOL,
    "logger.wandb": BOOL,
    "logger.mode": choice("online", "offline", "disabled"),
    "logger.project": text("must be a non-empty W&B project name"),
    "logger.group": optional(_TEXT),
    "logger.init_timeout": POSITIVE,
    "logger.progress_bar": BOOL,
    "logger.log_interval_frames_per_task": FRAMES,
    "env.name": NAME,
    "env.action_space": optional(choice("discrete", "continuous")),
    "env.train_tasks": TASKS,
    "env.transfer_tasks": TASKS,
    "env.train_mode": choice("train", "test"),
    "env.transfer_mode": choice("train", "test"),
    "env.eval_mode": choice("train", "test"),
    "env.optimal_return": optional((is_number, "must be a finite number")),
    "env.eval_opponents": (lambda v: isinstance(v, list) and all(isinstance(o, str) for o in v),
                           "must be a list of scripted opponent names"),
    "experiment.name": NAME,
    "experiment.paper_population": POSITIVE_INT,
    "experiment.quick_population": POSITIVE_INT,
    "experiment.quick_budget_scale": POSITIVE,
}
_HPARAMS = "env.hparams."
_SIMPLE_REFERENCE = re.compile(r"\$\{([\w.]+)\}")


def validate_config(cfg: DictConfig, defaults: DictConfig | None = None, overrides: Sequence[str] = ()) -> None:
    """Raise :class:`ConfigError` listing every invalid value of ``cfg`` (one line each).

    ``defaults``: the same config without value overrides; each value must then have its default's type.
    ``overrides``: the command line's value overrides, so that a setting the algorithm would ignore is refused
    (``msol.common.settings``).
    """
    first = _check_algorithm(cfg)  # an unknown or incompatible algorithm explains everything else: report it alone
    if first:
        raise ConfigError(first)
    problems: dict[str, str] = {}
    default_values = _default_values(defaults)
    typed_algo = _algorithm_settings(cfg) is not None
    aliases: dict[str, str] = {}  # path -> path it is a plain ``${...}`` reference to
    missing: dict[str, list[str]] = {}  # referenced key that does not exist -> keys referring to it
    for path, value, error in _leaves(cfg):
        if isinstance(error, _MissingReference):
            missing.setdefault(error.target, []).append(path)
            continue
        if isinstance(value, _Alias):
            aliases[path] = value.target
            value = value.value
        problem = error or _check_value(path, value, default_values.get(path, _NO_DEFAULT), typed_algo)
        if problem:
            problems[path] = problem
    # A bad value reported at its source is not repeated at every key that merely refers to it.
    lines = [p for path, p in problems.items() if aliases.get(path) not in problems]
    if missing:  # typically an algorithm whose config reads env.hparams.* that this env does not define
        readers = sorted({r for refs in missing.values() for r in refs})
        lines.insert(0, f"algo={OmegaConf.select(cfg, 'algo.name')} cannot run with env={OmegaConf.select(cfg, 'env.name')}: "
                        f"the config has no {_few(sorted(missing))} (read by {_few(readers)}"
                        "); give them as overrides or pick another env/algo")
    if not lines:
        lines = _check_settings(cfg, overrides) or _check_env_ids(cfg) or _check_env_made(cfg)
    if lines:
        raise ConfigError("invalid config:\n  " + "\n  ".join(lines) if len(lines) > 1 else lines[0])


def _few(names: list[str], shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


class _Alias:
    """A leaf that is a plain ``${other.key}`` reference (its problems are reported at ``other.key``)."""

    def __init__(self, target: str, value: Any) -> None:
        self.target, self.value = target, value


class _MissingReference(str):
    """A leaf's ``${...}`` names a key that does not exist (reported once for all the leaves that read it)."""

    target: str


def _leaves(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, Any, str | None]]:
    """(path, resolved value or _Alias, resolution error) of every leaf, skipping Hydra's own node."""
    for key in node:
        if key == "hydra":
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        raw = node._get_node(key)._value()  # the unresolved text, to name interpolations
        try:
            child = node[key]
        except Exception as exc:  # noqa: BLE001 - a missing or failing interpolation names its key here
            yield path, None, _resolution_problem(path, raw, exc)
            continue
        if isinstance(child, DictConfig):
            yield from _leaves(child, path)
            continue
        value = OmegaConf.to_container(child, resolve=True) if isinstance(child, ListConfig) else child
        match = _SIMPLE_REFERENCE.fullmatch(raw) if isinstance(raw, str) else None
        yield path, (_Alias(match.group(1), value) if match else value), None


def _resolution_problem(path: str, raw: Any, exc: Exception) -> str:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "???" in str(raw) or "Missing mandatory value" in detail:
        return f"{path}: required, but not set (give {path}=<value>)"
    found = re.match(r"Interpolation key '([\w.]+)' not found", detail)
    if found:
        problem = _MissingReference(detail)
        problem.target = found.group(1)
        return problem
    return f"{path}={raw}: cannot be resolved ({detail})"


def _default_values(defaults: DictConfig | None) -> dict[str, Any]:
    """Leaf path -> default value (empty when there are no defaults or they do not resolve: no type checks)."""
    if defaults is None:
        return {}
    try:
        container = OmegaConf.to_container(defaults, resolve=True)
    except Exception:  # noqa: BLE001 - e.g. defaults of an env/algo pair that cannot run: reported elsewhere
        return {}
    return flat_leaves(container)


def flat_leaves(container: Any) -> dict[str, Any]:
    """Dotted leaf path -> value of a nested dict (lists are leaves)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else str(key))
        else:
            flat[prefix] = node

    walk(container, "")
    return flat


_NO_DEFAULT = object()


def _check_value(path: str, value: Any, default: Any = _NO_DEFAULT, typed_algo: bool = False) -> str | None:
    """The rule of ``path`` if it has one, else its default's type; ``algo.*`` of an algorithm with typed settings is
    left to them (``_check_settings``)."""
    if typed_algo and path.startswith("algo."):
        return None
    rule = RUN_RULES.get(path)
    if rule is None and path.startswith(_HPARAMS):
        rule = HPARAM_RULES.get(path[len(_HPARAMS):])
    if rule is not None:
        ok, valid = rule
        return None if ok(value) else f"{path}={value!r}: {valid}"
    return _check_type(path, value, default)


def _check_type(path: str, value: Any, default: Any) -> str | None:
    """A key without a rule keeps its default's type (a typo such as ``algo.frozen=ture`` is caught here)."""
    if default is _NO_DEFAULT or default is None:
        return None
    if value is None:
        return f"{path}=None: required (default {default!r})"
    if isinstance(default, bool):
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(default, int):
        expected, ok = "an integer", is_int(value)
    elif isinstance(default, float):
        expected, ok = "a number", is_number(value)
    elif isinstance(default, str):
        expected, ok = "a string", isinstance(value, str)
    elif isinstance(default, list):
        expected, ok = "a list", isinstance(value, list)
    else:
        return None
    return None if ok else f"{path}={value!r}: must be {expected} (default {default!r})"


def _check_algorithm(cfg: DictConfig) -> str | None:
    """The algorithm exists and can act in the env's action space (a continuous env with a discrete-only algo)."""
    from msol.common.algorithms import available_algorithms

    algos = available_algorithms()
    name = str(OmegaConf.select(cfg, "algo.name", throw_on_resolution_failure=False))
    if name not in algos:
        return f"algo.name={name!r}: unknown algorithm; valid: {', '.join(algos)}"
    space = OmegaConf.select(cfg, "env.action_space", default=None, throw_on_resolution_failure=False)
    if space is not None and space not in algos[name].action_spaces:
        return (f"algo={name} with env={OmegaConf.select(cfg, 'env.name')}: the env has {space} actions but {name} "
                f"supports only {', '.join(algos[name].action_spaces)} actions")
    device = str(OmegaConf.select(cfg, "device", default="cpu", throw_on_resolution_failure=False))
    if DEVICE[0](device) and device != "cpu":  # a malformed device is reported by its own rule
        if "cuda" not in algos[name].devices:
            return f"device={device}: algo={name} trains on the CPU only; valid: cpu"
        import torch

        if not torch.cuda.is_available():
            return (f"device={device}: no usable CUDA device here (torch {torch.__version__}, built with CUDA "
                    f"{torch.version.cuda or 'no'}); valid here: cpu")
    return None


def _algorithm_settings(cfg: DictConfig) -> type[AlgorithmSettings] | None:
    from msol.common.algorithms import get_algorithm

    return get_algorithm(str(cfg.algo.name)).settings


def _check_settings(cfg: DictConfig, overrides: Sequence[str]) -> list[str]:
    """``cfg.algo`` against the algorithm's typed settings, if it has them."""
    settings = _algorithm_settings(cfg)
    return settings_problems(settings, cfg.algo, overrides) if settings is not None else []


def _check_env_ids(cfg: DictConfig) -> list[str]:
    """``env.id`` (and ``env.transfer_id``) name registered gymnasium ids; looked up, no env is built."""
    import gymnasium

    from msol import envs  # noqa: F401  (registers the msol/ ids)

    problems = []
    for key in ("id", "transfer_id"):
        if key not in cfg.env:
            continue
        env_id = cfg.env[key]
        if env_id is None and key == "id":
            problems.append(f"env.id=None: env={cfg.env.name} needs a gymnasium id, e.g. env.id=Pendulum-v1")
        elif env_id is not None and str(env_id) not in gymnasium.registry:
            close = difflib.get_close_matches(str(env_id), list(gymnasium.registry), n=3)
            problems.append(f"env.{key}={env_id!r}: not a registered gymnasium id"
                            + (f"; did you mean {', '.join(close)}?" if close else ""))
    return problems


def _check_env_made(cfg: DictConfig) -> list[str]:
    """The env can be made with ``env.kwargs`` (its constructor checks them) and the task lists name its tasks. An env
    is made only when there are kwargs or task lists to check; for transfer, ``env.transfer_id`` and
    ``env.transfer_kwargs`` when given."""
    if not cfg.env.get("id"):
        return []
    import gymnasium

    from msol import envs  # noqa: F401  (registers the msol/ ids)

    problems: list[str] = []
    made: dict[str, list[str]] = {}  # "<id> <kwargs>" -> its tasks: each env is made once
    for tasks_key, id_key, kwargs_key in (("train_tasks", "id", "kwargs"),
                                          ("transfer_tasks", "transfer_id", "transfer_kwargs")):
        if not cfg.env.get(id_key):
            id_key, kwargs_key = "id", "kwargs"  # transfer on the training env
        env_id = str(cfg.env[id_key])
        kwargs = OmegaConf.to_container(cfg.env[kwargs_key], resolve=True) if cfg.env.get(kwargs_key) else {}
        names = OmegaConf.select(cfg, f"env.{tasks_key}", default="all")
        names = list(names) if isinstance(names, (list, ListConfig)) else None
        if not kwargs and names is None:
            continue
        key = f"{env_id} {kwargs}"
        if key not in made:
            try:
                probe = gymnasium.make(env_id, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any failure to build it is the message
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if kwargs:
                    return [f"env.{kwargs_key}={kwargs}: {env_id} cannot be made with them: {detail}"]
                return [f"env.{id_key}={env_id!r}: cannot be made ({type(exc).__name__}: {detail})"]
            made[key] = list(getattr(probe.unwrapped, "tasks", []))
            probe.close()
        tasks = made[key]
        unknown = [t for t in names or [] if t not in tasks]
        if tasks and unknown:
            problems.append(f"env.{tasks_key}={names}: unknown task(s) {unknown}; valid: {', '.join(tasks)}")
    return problems
