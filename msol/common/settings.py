"""Typed settings of an algorithm: one frozen dataclass per algorithm (or family of algorithms sharing a learner)
naming every key of its ``configs/algo/*.yaml``, with the rule each value must meet and a docstring saying what it
does — the one place to read what an algorithm can be told.

The yaml files keep the values (defaults live there only; a setting read from the env's ``hparams`` is a
``${env.hparams.<key>}`` there); the dataclass is the schema they are checked against before anything runs:

- a key the algorithm does not have (``+algo.polciy_coef=2``) is refused, with the closest names;
- a setting the yaml does not give is refused (a config file out of step with its learner);
- every value meets its field's rule (``setting(rule)``);
- a setting that the rest of the configuration makes the learner ignore (``algo.policy_coef`` with ``loss=ppo``) is
  refused when the command line sets it: :meth:`AlgorithmSettings.ignored` says which and why.

An algorithm registers its settings with ``register_algorithm(..., settings=TheirSettings)``; one without keeps
only the key rules of ``msol.common.config_check``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from msol.common.rules import POSITIVE, POSITIVE_INT, PROBABILITY, Rule, choice

MAPPING: Rule = (lambda v: isinstance(v, dict), "must be a mapping")


def setting(rule: Rule, keys: Mapping[str, Rule] | None = None, each: Rule | None = None) -> Any:
    """A field of an :class:`AlgorithmSettings` dataclass whose value must meet ``rule`` (no default: the yaml
    holds it). For a mapping: ``keys`` are the rules of the entries we know (of SB3's keyword arguments, say; any
    other entry is left to whoever receives it), ``each`` the rule of every entry."""
    return dataclasses.field(metadata={"rule": rule, "keys": dict(keys or {}), "each": each})


@dataclasses.dataclass(frozen=True)
class AlgorithmSettings:
    """Base of the typed settings; subclasses are frozen dataclasses whose fields are made with :func:`setting`."""

    yaml: ClassVar[str] = "configs/algo/<name>.yaml"  # where the values are, for messages

    @classmethod
    def ignored(cls, values: Mapping[str, Any]) -> dict[str, str]:
        """Settings that the other values make the learner ignore -> why (e.g. ``{"policy_coef": "with
        loss=ppo: ..."}``); none by default."""
        return {}

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def value_problems(cls, values: Mapping[str, Any]) -> list[str]:
        """One line per value that breaks its field's rule."""
        problems = []
        for field in dataclasses.fields(cls):
            value = values[field.name]
            valid, what = field.metadata["rule"]
            if not valid(value):
                problems.append(f"algo.{field.name}={value!r}: {what}")
                continue
            if not isinstance(value, Mapping):
                continue
            each = field.metadata["each"]
            for key, entry in value.items():
                valid, what = field.metadata["keys"].get(key) or each or (lambda _: True, "")
                if not valid(entry):
                    problems.append(f"algo.{field.name}.{key}={entry!r}: {what}")
        return problems


@dataclasses.dataclass(frozen=True)
class A2CSettings(AlgorithmSettings):
    """The batch and optimiser settings of the synchronous advantage actor-critics on task slots (MSOL's learner,
    Option-Critic): the same names and meanings, so a like-for-like comparison sets them once."""

    num_slots: int = setting(POSITIVE_INT)
    """Task slots trained at once; each runs one task."""
    envs_per_slot: int = setting(POSITIVE_INT)
    """Environments per task slot."""
    n_steps: int = setting(POSITIVE_INT)
    """Rollout length T (and the n of the n-step returns)."""
    gamma: float = setting(PROBABILITY)
    """Discount γ."""
    optimizer: str = setting(choice("rmsprop", "adam"))
    """rmsprop (the A2C of MSOL's authors) or adam."""
    lr: float = setting(POSITIVE)
    """Learning rate."""
    rmsprop_alpha: float = setting(PROBABILITY)
    """RMSprop's smoothing constant (the authors' 0.99)."""
    eps: float = setting(POSITIVE)
    """The optimiser's ε (the authors' 5e-5)."""
    max_grad_norm: float = setting(POSITIVE)
    """Gradient-norm clip, per population member."""

    @classmethod
    def ignored(cls, values: Mapping[str, Any]) -> dict[str, str]:
        return {"rmsprop_alpha": "with optimizer=adam"} if values["optimizer"] == "adam" else {}


def set_on_command_line(overrides: Sequence[str], prefix: str = "algo.") -> set[str]:
    """The top-level ``algo`` keys that the command line's value overrides set (``algo.lr=1e-3`` -> ``lr``)."""
    keys = set()
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key.startswith(prefix):
            keys.add(key[len(prefix):].split(".")[0])
    return keys


def settings_problems(settings: type[AlgorithmSettings], algo: DictConfig, overrides: Sequence[str] = ()
                      ) -> list[str]:
    """One line per problem of ``algo`` (the composed ``cfg.algo``) against ``settings``; ``overrides`` are the
    command line's (or sweep job's) value overrides, for the ignored-setting check."""
    name = OmegaConf.select(algo, "name", default="?")
    fields = settings.names()
    problems = []
    for key in algo:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=3)
            hint = f"; did you mean {', '.join(f'algo.{c}' for c in close)}?" if close else ""
            problems.append(f"algo.{key}: not a setting of algo={name}{hint} (its settings: {settings.__module__}."
                            f"{settings.__qualname__})")
    missing = [key for key in fields if key not in algo]
    if missing:
        problems.append(f"algo={name}: {settings.yaml} gives no {', '.join(missing)} (every setting of "
                        f"{settings.__qualname__} needs a value there)")
    if problems:
        return problems
    values = OmegaConf.to_container(algo, resolve=True)
    problems = settings.value_problems(values)
    if problems:
        return problems
    chosen = set_on_command_line(overrides)
    return [f"algo.{key}={values[key]!r}: algo={name} ignores it {why}; drop the override"
            for key, why in settings.ignored(values).items() if key in chosen]
