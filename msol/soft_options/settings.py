"""The settings of MSOL's learner (``configs/algo/msol.yaml`` and the algorithms built on it: msol_frozen, distral,
distral_action, hard_options, hard_options_primitives, a2c, ppo). Values and their sources are in the yaml files;
what each one does, and what it must be, is here (msol/common/settings.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from msol.common.protocol import SLOT_TASK_DRAWS
from msol.common.rules import (
    ALGORITHM_NAMES,
    BOOL,
    FRAMES,
    LAYERS,
    NAME,
    NON_NEGATIVE,
    OPEN_PROBABILITY,
    PHASES,
    POSITIVE_INT,
    PROBABILITY,
    choice,
    optional,
)
from msol.common.settings import A2CSettings, setting


@dataclass(frozen=True)
class SoftOptionsSettings(A2CSettings):
    """docs/spec/msol.md's symbols; the paper's values per env are under ``env.hparams``. Batch and optimiser settings:
    :class:`msol.common.settings.A2CSettings`."""

    yaml: ClassVar[str] = "configs/algo/msol.yaml (or the algo yaml built on it)"

    name: str = setting(NAME)
    """The algorithm: msol, msol_frozen, distral, distral_action, hard_options, hard_options_primitives, a2c, ppo."""
    loss: str = setting(choice("a2c", "ppo"))
    """a2c: n-step returns, one update per rollout (the paper's discrete envs); ppo: clipped surrogate, GAE, epochs
    of minibatches (Swimmer)."""
    phases: list = setting(PHASES)
    """options -> transfer; "scratch" = a fresh learner on the transfer tasks (flat A2C/PPO)."""
    also_transfer: list = setting(ALGORITHM_NAMES)
    """Algorithms whose transfers start from this run's option learning (``[msol_frozen]``: msol/common/twins.py)."""

    # what is learned
    num_options: int = setting(POSITIVE_INT)
    """m, options per task (1: DISTRAL, flat)."""
    use_terminations: bool = setting(BOOL)
    """false: no termination terms (DISTRAL, flat learners)."""
    frozen: bool = setting(BOOL)
    """MSOL(frozen), hard options: after transfer the posteriors stay equal to the priors (q^L = p^L, q^T = p^T)."""
    greedy_options: bool = setting(BOOL)
    """Frozen options act with argmax of the options and terminations (the authors' code, with frozen=true)."""
    observe_prev_action: bool = setting(BOOL)
    """The networks also read the previous action, one-hot (DISTRAL(+action))."""
    primitive_options: bool = setting(BOOL)
    """After transfer the master may also pick primitive actions, as one-step options (hard options + primitives)."""

    # networks (docs/spec/msol.md, "Architecture" and "Layer shapes")
    hidden: list = setting(LAYERS)
    """The trunk's hidden layers."""
    encoder_output_size: int = setting(POSITIVE_INT)
    """Width of the option layer f(h, z) after the trunk (the authors' 512)."""
    option_embedding: int = setting(POSITIVE_INT)
    """Width of the option's embedding fed to the option layer."""
    master_input: str = setting(choice("option0", "trunk"))
    """What the master reads: the option layer at option 0 (the authors' code) or the trunk h."""
    fresh_master_encoder: bool = setting(BOOL)
    """At transfer, master and value read a freshly initialised encoder (the authors' code)."""

    # the objective (docs/spec/msol.md, "Loss")
    alpha: float = setting(OPEN_PROBABILITY)
    """Fixed termination prior p^T(b=1) = 1 − α during option learning (it enters a log: 0 and 1 excluded)."""
    beta_start: float = setting(NON_NEGATIVE)
    """β, the weight of the divergence from the priors, at the start of option learning."""
    beta_end: float = setting(NON_NEGATIVE)
    """β at the end of its annealing."""
    beta_hold_frames_per_task: float = setting(NON_NEGATIVE)
    """Final period of option learning with β and λ_H held at their end values (the authors' final_period_frames)."""
    entropy_start: float = setting(NON_NEGATIVE)
    """λ_H, the entropy weight, at the start of option learning."""
    entropy_end: float = setting(NON_NEGATIVE)
    """λ_H at the end of its annealing."""
    entropy_transfer: float = setting(NON_NEGATIVE)
    """λ_H during transfer."""
    entropy_action: Any = setting(optional(NON_NEGATIVE))
    """λ on H(q^L) only (null: the entropy_* values); Swimmer: 4e-4."""
    value_coef: float = setting(NON_NEGATIVE)
    """λ_V (2 λ_V = λ_A = λ_P = 1)."""
    policy_coef: float = setting(NON_NEGATIVE)
    """λ_A, the weight of the policy-gradient term of the A2C form."""
    prior_coef: float = setting(NON_NEGATIVE)
    """λ_P, the weight of the priors' distillation term."""

    # budgets and task slots (docs/spec/msol.md, "Protocol")
    option_frames_per_task: float = setting(FRAMES)
    """Option-learning frames per task."""
    transfer_frames_per_task: float = setting(FRAMES)
    """Transfer frames per task."""
    slot_reset_frames_per_task: float = setting(FRAMES)
    """During option learning each task slot is reset (posterior re-initialised) this often, slots staggered."""
    slot_task_draw: str = setting(choice(*SLOT_TASK_DRAWS))
    """The task of a reset slot: keep (the authors' reset_task) or drawn uniformly (docs/msol.md)."""
    reset_optimizer: str = setting(choice("slot", "all"))
    """At a slot reset: zero that slot's optimiser statistics, or a new optimiser (the authors' code)."""

    # the PPO form (loss=ppo)
    ppo_epochs: int = setting(POSITIVE_INT)
    """Epochs over each rollout."""
    ppo_minibatches: int = setting(POSITIVE_INT)
    """Minibatches per epoch."""
    ppo_clip: float = setting(PROBABILITY)
    """ε of the clipped ratio (and of the clipped value loss)."""
    gae_lambda: float = setting(PROBABILITY)
    """λ of GAE."""

    @classmethod
    def ignored(cls, values: Mapping[str, Any]) -> dict[str, str]:
        why = super().ignored(values)
        if values["loss"] == "a2c":
            why |= dict.fromkeys(("ppo_epochs", "ppo_minibatches", "ppo_clip", "gae_lambda"),
                                 "with loss=a2c (they shape the PPO form only)")
        if values["loss"] == "ppo":
            why["policy_coef"] = "with loss=ppo (the clipped surrogate term has weight 1)"
        if not values["frozen"]:
            why["greedy_options"] = "with frozen=false (only frozen options act greedily)"
        return why
