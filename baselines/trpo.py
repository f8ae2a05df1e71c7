"""``python -m msol.train env=<env> algo=trpo``: sb3-contrib's TRPO, the Trust-PCL comparison baseline.

The algorithm is sb3-contrib's; this module only plugs it into the run directory through an SB3 callback, with the
same rows, greedy evaluation and checkpoints as ``algo=trust_pcl`` (``msol/common/single_env.py``).

Checkpoints are written at the start of a rollout (after the previous update), so they hold a consistent policy,
value function and critic optimiser; a resumed run starts a fresh rollout and a fresh episode. SB3 collects whole
rollouts, so a run may overshoot ``total_frames`` by less than ``n_steps`` env steps (the rows say how many).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from omegaconf import DictConfig
from sb3_contrib import TRPO
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from msol.common.algorithms import register_algorithm
from msol.common.rules import BOOL, LAYERS, POSITIVE, POSITIVE_INT, PROBABILITY, choice
from msol.common.run import Run
from msol.common.settings import AlgorithmSettings, setting
from msol.common.single_env import Reporter, make_run_env

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass(frozen=True)
class TRPOSettings(AlgorithmSettings):
    """The settings of ``algo=trpo`` (``configs/algo/trpo.yaml``); all but the network's go to sb3-contrib's TRPO
    under the same names (its documentation says more)."""

    yaml: ClassVar[str] = "configs/algo/trpo.yaml"

    name: str = setting((lambda v: v == "trpo", "must be trpo"))
    """The algorithm."""
    total_frames: int = setting(POSITIVE_INT)
    """Env steps of the run (× budget_scale)."""
    n_steps: int = setting(POSITIVE_INT)
    """Env steps per policy update."""
    batch_size: int = setting(POSITIVE_INT)
    """Minibatch of the critic updates."""
    gamma: float = setting(PROBABILITY)
    """Discount γ."""
    gae_lambda: float = setting(PROBABILITY)
    """λ of GAE."""
    lr: float = setting(POSITIVE)
    """The critic's (value function's) learning rate."""
    n_critic_updates: int = setting(POSITIVE_INT)
    """Critic updates per policy update."""
    target_kl: float = setting(POSITIVE)
    """The trust region: the largest KL between successive policies."""
    cg_max_steps: int = setting(POSITIVE_INT)
    """Conjugate-gradient steps for the natural gradient."""
    cg_damping: float = setting(POSITIVE)
    """Damping of the Fisher-vector products."""
    line_search_shrinking_factor: float = setting(PROBABILITY)
    """Step shrink per line-search trial."""
    line_search_max_iter: int = setting(POSITIVE_INT)
    """Line-search trials."""
    normalize_advantage: bool = setting(BOOL)
    """Normalise the advantages of each update."""
    sub_sampling_factor: int = setting(POSITIVE_INT)
    """Use every k-th sample of a rollout for the policy step."""
    hidden: list = setting(LAYERS)
    """Hidden layers of the policy and value networks."""
    activation: str = setting(choice(*_ACTIVATIONS))
    """Their activation."""
_HYPERPARAMETERS = ("n_steps", "batch_size", "gamma", "gae_lambda", "n_critic_updates", "target_kl",
                    "cg_max_steps", "cg_damping", "line_search_shrinking_factor", "line_search_max_iter",
                    "normalize_advantage", "sub_sampling_factor")


def make_trpo(cfg: DictConfig) -> TRPO:
    """A TRPO model on ``cfg.env`` with the hyper-parameters of ``cfg.algo``."""
    algo = cfg.algo
    if algo.activation not in _ACTIVATIONS:
        raise ValueError(f"algo.activation={algo.activation!r} is not valid; valid: {', '.join(_ACTIVATIONS)}")
    policy_kwargs = {"net_arch": list(algo.hidden), "activation_fn": _ACTIVATIONS[algo.activation]}
    return TRPO("MlpPolicy", make_run_env(cfg, "train"), learning_rate=float(algo.lr), seed=int(cfg.seed),
                policy_kwargs=policy_kwargs, device=str(cfg.device), verbose=0,
                **{key: algo[key] for key in _HYPERPARAMETERS})


class ReporterCallback(BaseCallback):
    """Feeds finished episodes (from SB3's Monitor), learner metrics and checkpoints to the shared Reporter."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter
        self.learner_metrics: dict[str, float] = {}

    def state(self) -> dict[str, Any]:
        return {"policy": self.model.policy.state_dict(),
                "optimizer": self.model.policy.optimizer.state_dict(),
                "num_timesteps": int(self.model.num_timesteps),
                "torch_rng": torch.get_rng_state()}

    def _on_rollout_start(self) -> None:
        values = self.model.logger.name_to_value
        self.learner_metrics = {k.split("/", 1)[1]: float(v) for k, v in values.items()
                                if k.startswith("train/") and k != "train/learning_rate"}
        self.reporter.maybe_checkpoint(self.state)

    def _on_step(self) -> bool:
        finished = [(float(info["episode"]["r"]), int(info["episode"]["l"]))
                    for info in self.locals["infos"] if "episode" in info]
        self.reporter.advance(int(self.model.num_timesteps), finished, self.learner_metrics)
        return True


@register_algorithm("trpo", action_spaces=("discrete", "continuous"), devices=("cpu", "cuda"), settings=TRPOSettings,
                    description="TRPO (sb3-contrib), the Trust-PCL comparison baseline")
def train_trpo(cfg: DictConfig, run: Run) -> dict[str, float]:
    """Train sb3-contrib TRPO on ``cfg.env.id`` for ``algo.total_frames × budget_scale`` env steps."""
    torch.manual_seed(int(cfg.seed))
    model = make_trpo(cfg)
    reporter = Reporter(cfg, run, greedy_act=lambda obs: np.asarray(model.predict(obs, deterministic=True)[0]))
    callback = ReporterCallback(reporter)

    checkpoint = run.load_checkpoint()
    if checkpoint is not None:
        model.policy.load_state_dict(checkpoint["policy"])
        model.policy.optimizer.load_state_dict(checkpoint["optimizer"])
        model.num_timesteps = int(checkpoint["num_timesteps"])
        torch.set_rng_state(checkpoint["torch_rng"])
        reporter.load_state_dict(checkpoint["reporter"])
    reporter.start(model.num_timesteps, desc="trpo")

    remaining = reporter.total - model.num_timesteps
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=callback, log_interval=None,
                    reset_num_timesteps=checkpoint is None)
    return reporter.finish(callback.state)
