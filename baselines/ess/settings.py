"""The settings of the stable-baselines3 agents of the ESS games (``configs/algo/sb3_*.yaml``, ``ess_*.yaml``): what
each does and what it must be (msol/common/settings.py). ``kwargs`` goes verbatim to the SB3 constructor, which
checks it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from msol.baselines.ess.agents import ACTIVATIONS, LR_SCHEDULES, NETS
from msol.common.rules import (
    BOOL,
    LAYERS,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    Rule,
    choice,
)
from msol.common.settings import MAPPING, AlgorithmSettings, setting

# The SB3 constructor arguments that our yamls set, checked before the run (SB3 itself checks some only mid-run).
SB3_KWARGS: dict[str, Rule] = {
    **dict.fromkeys(("n_steps", "batch_size", "n_epochs", "buffer_size", "train_freq", "target_update_interval"),
                    POSITIVE_INT),
    "learning_starts": NON_NEGATIVE_INT,
    **dict.fromkeys(("gamma", "gae_lambda", "exploration_fraction", "exploration_final_eps"), PROBABILITY),
    **dict.fromkeys(("ent_coef", "vf_coef", "clip_range"), NON_NEGATIVE),
    **dict.fromkeys(("max_grad_norm", "target_kl"), POSITIVE),
    "normalize_advantage": BOOL,
}
SUPERVISED: dict[str, Rule] = {"epochs": POSITIVE_INT, "batch_size": POSITIVE_INT, "lr": POSITIVE,
                               "max_examples": POSITIVE_INT}


@dataclass(frozen=True)
class SB3AgentSettings(AlgorithmSettings):
    """An SB3 PPO, A2C or DQN agent with a linear or MLP policy on normalised observations."""

    yaml: ClassVar[str] = "configs/algo/sb3_<algo>.yaml"

    name: str = setting(choice("sb3_ppo", "sb3_a2c", "sb3_dqn", "ess_multiagent", "ess_supervised"))
    """The algorithm."""
    sb3_algo: str = setting(choice("ppo", "a2c", "dqn"))
    """The SB3 class that learns."""
    total_frames: int = setting(POSITIVE_INT)
    """Env steps of the run (× budget_scale)."""
    net: str = setting(choice(*NETS))
    """linear: no hidden layer; mlp: the ``hidden`` layers."""
    hidden: list = setting(LAYERS)
    """Hidden layers of the MLP policy (and value) network."""
    activation: str = setting(choice(*ACTIVATIONS))
    """Their activation."""
    lr: float = setting(POSITIVE)
    """Learning rate (at the start, with ``lr_schedule=linear``)."""
    lr_schedule: str = setting(choice(*LR_SCHEDULES))
    """constant, or linear annealing to 0 over the budget."""
    n_envs: int = setting(POSITIVE_INT)
    """Environments stepped together."""
    obs_stats_steps: int = setting(NON_NEGATIVE_INT)
    """Random-play steps that estimate the observations' mean and standard deviation."""
    eval_games: int = setting(POSITIVE_INT)
    """Fresh games per evaluation (deterministic policy, a fixed evaluation seed)."""
    kwargs: dict = setting(MAPPING, keys=SB3_KWARGS)
    """Passed verbatim to the SB3 constructor (``n_steps``, ``clip_range``, ``buffer_size``, ...)."""

    @classmethod
    def ignored(cls, values: Mapping[str, Any]) -> dict[str, str]:
        if values["net"] == "linear":
            return dict.fromkeys(("hidden", "activation"), "with net=linear (no hidden layer)")
        return {}


@dataclass(frozen=True)
class ESSMultiagentSettings(SB3AgentSettings):
    yaml: ClassVar[str] = "configs/algo/ess_multiagent.yaml"

    rounds: int = setting(POSITIVE_INT)
    """Rounds of alternation; each trains the attacker, then the defender, for budget / (2 rounds) frames."""


@dataclass(frozen=True)
class ESSSupervisedSettings(SB3AgentSettings):
    yaml: ClassVar[str] = "configs/algo/ess_supervised.yaml"

    supervised: dict = setting(MAPPING, keys=SUPERVISED)
    """The supervised copy's training: ``epochs``, ``batch_size``, ``lr``, ``max_examples`` (visited observations
    kept)."""
