"""``python -m msol.train env=<env> algo=trust_pcl``: Trust-PCL inside the shared run directory machinery."""

from __future__ import annotations

import dataclasses

import torch
from omegaconf import DictConfig, OmegaConf

from msol.baselines.trust_pcl.algorithm import TrustPCLConfig
from msol.baselines.trust_pcl.settings import TrustPCLSettings
from msol.baselines.trust_pcl.trainer import TrustPCLTrainer
from msol.common.algorithms import register_algorithm
from msol.common.device import learner_device
from msol.common.numerics import check_finite
from msol.common.run import Run
from msol.common.single_env import Reporter, make_run_env


def config_from_cfg(algo_cfg: DictConfig) -> TrustPCLConfig:
    """The ``TrustPCLConfig`` fields present in ``cfg.algo`` (other keys, e.g. ``total_frames``, are the loop's)."""
    values = OmegaConf.to_container(algo_cfg, resolve=True)
    fields = {f.name for f in dataclasses.fields(TrustPCLConfig)}
    kwargs = {k: v for k, v in values.items() if k in fields}
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(kwargs["hidden"])
    return TrustPCLConfig(**kwargs)


@register_algorithm("trust_pcl", action_spaces=("discrete", "continuous"), devices=("cpu", "cuda"),
                    settings=TrustPCLSettings,
                    description="Trust-PCL (Nachum et al. 2018), off-policy trust-region path consistency learning")
def train_trust_pcl(cfg: DictConfig, run: Run) -> dict[str, float]:
    """Train Trust-PCL on ``cfg.env.id`` for ``algo.total_frames × budget_scale`` env steps."""
    config = config_from_cfg(cfg.algo)
    trainer = TrustPCLTrainer(make_run_env(cfg, "train"), config, seed=int(cfg.seed), device=learner_device(cfg))
    reporter = Reporter(cfg, run, greedy_act=lambda obs: trainer.agent.act(obs, greedy=True))

    def state() -> dict:
        return {"trainer": trainer.state_dict()}

    checkpoint = run.load_checkpoint()
    if checkpoint is not None:
        trainer.load_state_dict(checkpoint["trainer"])
        reporter.load_state_dict(checkpoint["reporter"])
    reporter.start(trainer.env_steps, desc="trust_pcl")

    while trainer.env_steps < reporter.total:
        metrics, finished = trainer.iteration()
        check_finite(f"Trust-PCL consistency loss at env step {trainer.env_steps}",
                     torch.tensor(metrics["huber_loss"], device="cpu"))
        reporter.advance(trainer.env_steps, finished, metrics)
        reporter.maybe_checkpoint(state)
    return reporter.finish(state)
