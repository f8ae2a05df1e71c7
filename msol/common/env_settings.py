"""The typed hyper-parameters an env config gives its algorithms (``env.hparams`` of ``configs/env/*.yaml``): the
paper's values per environment, which the algorithm yamls read as ``${env.hparams.<key>}``.

Each env gives the subset its algorithms read (a gym env for Trust-PCL only its frame budgets), so every field is
optional here; a value that is given must meet its field's rule, checked at ``env.hparams.<key>`` (where the value
is written, not at every ``algo.*`` key that reads it). A hyper-parameter that is not a field (one that an
algorithm of another package reads) keeps its default's type. The env's constructor arguments (``env.kwargs``)
are checked by the env itself when the config check makes it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from msol.common.rules import (
    FRAMES,
    LAYERS,
    NON_NEGATIVE,
    OPEN_PROBABILITY,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Rule,
    optional,
)


def _hparam(rule: Rule) -> Any:
    return dataclasses.field(default=None, metadata={"rule": rule})


@dataclasses.dataclass(frozen=True)
class EnvHyperparameters:
    """docs/spec/msol.md's hyper-parameter table, one field per row; the values are in the env yamls."""

    # networks
    num_options: int | None = _hparam(POSITIVE_INT)
    """m: options per task (and MLSH's sub-policies)."""
    hidden: Sequence[int] | None = _hparam(LAYERS)
    """The shared trunk's layer widths."""
    encoder_output_size: int | None = _hparam(POSITIVE_INT)
    """Width of the option layer on top of the trunk."""
    option_embedding: int | None = _hparam(POSITIVE_INT)
    """Width of the option embedding that conditions the option layer."""
    distral_hidden: Sequence[int] | None = _hparam(LAYERS)
    """DISTRAL's trunk where the paper gives it a network of its own (Moving Bandits)."""
    distral_encoder_output_size: int | None = _hparam(POSITIVE_INT)
    """DISTRAL's option-layer width there."""
    # batch and optimiser
    num_slots: int | None = _hparam(POSITIVE_INT)
    """Task slots trained at once."""
    transfer_slots: int | None = _hparam(POSITIVE_INT)
    """Task slots during transfer, where they differ from ``num_slots``."""
    envs_per_slot: int | None = _hparam(POSITIVE_INT)
    """Environments per task slot."""
    gamma: float | None = _hparam(PROBABILITY)
    """Discount γ."""
    n_steps: int | None = _hparam(POSITIVE_INT)
    """Rollout length T of the n-step returns."""
    lr: float | None = _hparam(POSITIVE)
    """Learning rate."""
    # regularisation
    alpha: float | None = _hparam(OPEN_PROBABILITY)
    """α: the fixed termination prior p(b=1) = 1 − α."""
    distral_beta: float | None = _hparam(NON_NEGATIVE)
    """β of DISTRAL."""
    beta_start: float | None = _hparam(NON_NEGATIVE)
    """β of MSOL at the start of option learning."""
    beta_end: float | None = _hparam(NON_NEGATIVE)
    """β of MSOL after the hold and the linear schedule."""
    beta_hold_frames_per_task: float | None = _hparam(NON_NEGATIVE)
    """Frames per task that β stays at ``beta_start``."""
    entropy_start: float | None = _hparam(NON_NEGATIVE)
    """Entropy weight at the start of option learning."""
    entropy_end: float | None = _hparam(NON_NEGATIVE)
    """Entropy weight at its end."""
    entropy_transfer: float | None = _hparam(NON_NEGATIVE)
    """Entropy weight during transfer."""
    entropy_action: float | None = _hparam(optional(NON_NEGATIVE))
    """Entropy weight of continuous actions (Swimmer); null: the entropy weight."""
    # budgets
    option_frames_per_task: float | None = _hparam(FRAMES)
    """Option-learning frames per task (× ``budget_scale``)."""
    transfer_frames_per_task: float | None = _hparam(FRAMES)
    """Transfer frames per task (× ``budget_scale``)."""
    slot_reset_frames_per_task: float | None = _hparam(FRAMES)
    """Frames per task between task-slot resets."""
    eval_interval_frames_per_task: float | None = _hparam(FRAMES)
    """Frames per task between evaluations."""
    log_interval_frames_per_task: float | None = _hparam(FRAMES)
    """Frames per task between metrics rows."""
    total_frames: int | None = _hparam(POSITIVE_INT)
    """Env steps of a single-task run (Trust-PCL, TRPO, the ESS agents)."""


HPARAM_RULES: Mapping[str, Rule] = {f.name: f.metadata["rule"] for f in dataclasses.fields(EnvHyperparameters)}
