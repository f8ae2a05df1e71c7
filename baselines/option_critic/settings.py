"""The settings of Option-Critic (``configs/algo/option_critic.yaml``; docs/spec/baselines.md "Option-Critic"): what each
does and what it must be (msol/common/settings.py). The values and where they come from are in the yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from msol.common.rules import (
    FRAMES,
    LAYERS,
    NON_NEGATIVE,
    PHASES,
    POSITIVE_INT,
    PROBABILITY,
)
from msol.common.settings import A2CSettings, setting


@dataclass(frozen=True)
class OptionCriticSettings(A2CSettings):
    """A2OC (Harb et al. 2018) with the task id as an input; batch and optimiser settings are MSOL's
    (:class:`msol.common.settings.A2CSettings`), where A2OC has none of its own."""

    yaml: ClassVar[str] = "configs/algo/option_critic.yaml"

    name: str = setting((lambda v: v == "option_critic", "must be option_critic"))
    """The algorithm."""
    phases: list = setting(PHASES)
    """options -> transfer: the same network keeps learning on the transfer tasks."""
    num_options: int = setting(POSITIVE_INT)
    """Options, shared by every task."""
    hidden: list = setting(LAYERS)
    """Hidden layers of the shared network."""
    encoder_output_size: int = setting(POSITIVE_INT)
    """Width of the last hidden layer (as MSOL's option layer)."""
    epsilon: float = setting(PROBABILITY)
    """ε of the ε-greedy option choice; V(s) = (1−ε) max_o Q + ε mean_o Q."""
    deliberation_cost: float = setting(NON_NEGATIVE)
    """η: subtracted from the reward when an option terminates, added in the termination gradient."""
    termination_margin: float = setting(NON_NEGATIVE)
    """A2OC's margin, added to η in the termination gradient only."""
    entropy_coef: float = setting(NON_NEGATIVE)
    """Weight of the intra-option policies' entropy bonus."""
    value_coef: float = setting(NON_NEGATIVE)
    """Weight of the critic's ½(y − Q(s, o))²."""
    option_frames_per_task: float = setting(FRAMES)
    """Option-learning frames per task."""
    transfer_frames_per_task: float = setting(FRAMES)
    """Transfer frames per task."""
