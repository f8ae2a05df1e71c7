"""The settings of MLSH (``configs/algo/mlsh.yaml``; docs/spec/baselines.md "MLSH"): what each does and what it must be
(msol/common/settings.py). The values, and which of them the MLSH code or the MSOL paper set, are in the yaml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from msol.common.rules import (
    BOOL,
    FRAMES,
    LAYERS,
    NON_NEGATIVE_INT,
    PHASES,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
)
from msol.common.settings import MAPPING, AlgorithmSettings, setting


@dataclass(frozen=True)
class MLSHSettings(AlgorithmSettings):
    """N, W and U are the MLSH paper's symbols."""

    yaml: ClassVar[str] = "configs/algo/mlsh.yaml"

    name: str = setting((lambda v: v == "mlsh", "must be mlsh"))
    """The algorithm."""
    phases: list = setting(PHASES)
    """options -> transfer (on the transfer tasks, sub-policies fixed, masters learned)."""
    num_subs: int = setting(POSITIVE_INT)
    """Sub-policies, shared exactly by every task."""
    hidden: list = setting(LAYERS)
    """Hidden layers (tanh) of each sub-policy, master and value network."""
    num_slots: int = setting(POSITIVE_INT)
    """Task slots trained at once; each draws its task again when its master is re-initialised."""
    envs_per_slot: int = setting(POSITIVE_INT)
    """Environments per task slot."""
    macro_duration: int = setting(POSITIVE_INT)
    """N: steps a chosen sub-policy runs before the master chooses again."""
    warmup: int = setting(NON_NEGATIVE_INT)
    """W: iterations that update only the master after it is re-initialised."""
    joint: int = setting(POSITIVE_INT)
    """U: iterations that then update master and sub-policies."""
    stagger_slots: bool = setting(BOOL)
    """Slot k starts with k mod 10 extra warm-up iterations (the MLSH code's per-worker offset)."""
    random_sub_prob: float = setting(PROBABILITY)
    """Probability that the master's choice is replaced by a uniformly drawn sub-policy."""
    rollout_steps: int = setting(POSITIVE_INT)
    """Steps per env per iteration."""
    gamma: float = setting(PROBABILITY)
    """Discount γ, both levels."""
    gae_lambda: float = setting(PROBABILITY)
    """λ of GAE, both levels."""
    ppo_clip: float = setting(PROBABILITY)
    """ε of PPO's clipped ratio, both levels."""
    ppo_epochs: int = setting(POSITIVE_INT)
    """PPO epochs per iteration, both levels."""
    master_lr: float = setting(POSITIVE)
    """The master's Adam step size (its Adam state is kept when the master is re-initialised, as in the code)."""
    master_batch_size: int = setting(POSITIVE_INT)
    """Rows per master minibatch."""
    sub_lr: float = setting(POSITIVE)
    """The sub-policies' Adam step size."""
    sub_minibatches: int = setting(POSITIVE_INT)
    """Minibatches per epoch for each sub-policy."""
    adam_eps: float = setting(POSITIVE)
    """Adam's ε, both levels."""
    paper_option_frames_per_task: dict = setting(MAPPING, each=FRAMES)
    """Option-learning frames per task for MLSH where the MSOL paper gives them, by env name."""
    option_frames_per_task: float = setting(FRAMES)
    """Option-learning frames per task (the paper's for this env if listed above, else the env's)."""
    transfer_frames_per_task: float = setting(FRAMES)
    """Transfer frames per task."""
