"""Validate a composed config before anything runs.

Each problem becomes one line naming the key, the bad value and what is valid, so a typo in a sweep fails in a
second with exit status 2 instead of after an hour of training. Rules are by key name, so a new algorithm's config
is checked as soon as it uses the usual names.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


class ConfigError(ValueError):
    """The config cannot run; the message lists every problem found."""


# key (last path component) -> (kind, description of what is valid)
_POSITIVE_INT = {"num_options", "num_slots", "envs_per_slot", "n_steps", "option_embedding", "ppo_epochs",
                 "ppo_minibatches", "episodes_per_slot", "torch_threads", "batch_size", "n_envs"}
_POSITIVE_NUMBER = {"lr", "eps", "max_grad_norm", "checkpoint_interval_s", "budget_scale", "init_timeout"}
_NON_NEGATIVE_NUMBER = {"beta_start", "beta_end", "entropy_start", "entropy_end", "entropy_transfer",
                        "value_coef", "policy_coef", "prior_coef", "beta_hold_frames_per_task"}
_PROBABILITY = {"alpha", "gamma", "gae_lambda", "ppo_clip", "rmsprop_alpha", "epsilon", "tau_gae"}
_POSITIVE_FRAMES_SUFFIX = ("_frames_per_task", "interval_frames_per_task")


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every invalid value of ``cfg``."""
    problems: list[str] = []
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except Exception as exc:  # noqa: BLE001 - interpolation errors name the key themselves
        raise ConfigError(f"config does not resolve: {exc}") from exc
    for path, value in _walk(container):
        problem = _check_value(path, value)
        if problem:
            problems.append(problem)
    problems.extend(_check_combinations(cfg))
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems) if len(problems) > 1 else problems[0])


def _walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "hydra":
                continue
            yield from _walk(value, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, node


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_value(path: str, value: Any) -> str | None:
    key = path.rsplit(".", 1)[-1]
    if key in _POSITIVE_INT:
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return f"{path}={value!r}: must be an integer >= 1"
    elif key in _POSITIVE_NUMBER:
        if not (_is_number(value) and math.isfinite(value) and value > 0):
            return f"{path}={value!r}: must be a number > 0"
    elif key in _NON_NEGATIVE_NUMBER:
        if not (_is_number(value) and math.isfinite(value) and value >= 0):
            return f"{path}={value!r}: must be a number >= 0"
    elif key in _PROBABILITY:
        if not (_is_number(value) and 0 <= value <= 1):
            return f"{path}={value!r}: must be a probability in [0, 1]"
    elif key.endswith(_POSITIVE_FRAMES_SUFFIX):
        if not (_is_number(value) and value > 0):
            return f"{path}={value!r}: must be a frame count > 0"
    elif key == "hidden":
        if not (isinstance(value, list) and value and all(isinstance(v, int) and v >= 1 for v in value)):
            return f"{path}={value!r}: must be a non-empty list of layer widths >= 1, e.g. [512, 256, 512]"
    elif key == "seed":
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return f"{path}={value!r}: must be an integer >= 0"
    return None


def _check_combinations(cfg: DictConfig) -> list[str]:
    from msol.algorithms import available_algorithms

    problems = []
    algos = available_algorithms()
    name = str(cfg.algo.name)
    if name not in algos:
        return [f"algo.name={name!r}: unknown algorithm; valid: {', '.join(algos)}"]
    space = OmegaConf.select(cfg, "env.action_space", default=None)
    if space is not None and space not in algos[name].action_spaces:
        problems.append(
            f"algo={name} with env={cfg.env.name}: the env has {space} actions but {name} supports only "
            f"{', '.join(algos[name].action_spaces)}"
        )
    device = OmegaConf.select(cfg, "device", default="cpu")
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        problems.append(f"device={device!r}: valid: cpu, cuda, cuda:<index>")
    for key in ("train_tasks", "transfer_tasks"):
        value = OmegaConf.select(cfg, f"env.{key}", default="all")
        if not (value == "all" or isinstance(value, (list, ListConfig))):
            problems.append(f"env.{key}={value!r}: must be 'all' or a list of task names")
    return problems
