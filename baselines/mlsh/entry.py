"""``python -m msol.train env=<env> algo=mlsh``: MLSH inside the shared protocol, run directory and checkpoints."""

from __future__ import annotations

from omegaconf import DictConfig

from msol.baselines.mlsh.learner import MLSHLearner
from msol.baselines.mlsh.networks import MLSHPolicy
from msol.baselines.mlsh.settings import MLSHSettings
from msol.common.algorithms import register_algorithm
from msol.common.device import build_on_cpu, learner_device
from msol.common.layers import Generators
from msol.common.population import PopulationEnv
from msol.common.protocol import PhaseSpec, run_protocol
from msol.common.run import Run


def make_mlsh_phase(cfg: DictConfig, spec: PhaseSpec, env: PopulationEnv, previous: MLSHLearner | None,
                    generators: Generators) -> MLSHLearner:
    """Option learning: fresh masters and sub-policies. Transfer: the learned sub-policies, frozen; fresh masters.
    Every member of the population at once (``generators``: one per member)."""
    if spec.name not in ("options", "transfer"):
        raise ValueError(f"algo.phases: {spec.name!r} is not an MLSH phase; valid: options, transfer")
    if env.continuous:
        raise ValueError(f"algo=mlsh supports discrete actions only; env={cfg.env.name} has continuous actions")
    policy = build_on_cpu(lambda: MLSHPolicy(env.obs_dim, env.action_dim, num_slots=spec.num_slots,
                                             num_subs=int(cfg.algo.num_subs), hidden=list(cfg.algo.hidden),
                                             generators=generators), learner_device(cfg))
    if spec.name == "transfer":
        if previous is not None:  # when resuming into transfer, the checkpoint brings the sub-policies
            shared = {k: v for k, v in previous.model.state_dict().items() if k.startswith(("sub_pi.", "sub_v."))}
            policy.load_state_dict(shared, strict=False)
        for param in policy.sub_parameters():
            param.requires_grad_(False)
    return MLSHLearner(cfg, spec, env, policy, generators)


@register_algorithm("mlsh", action_spaces=("discrete",), devices=("cpu", "cuda"), populations=True,
                    settings=MLSHSettings,
                    description="MLSH (Frans et al. 2017): hard shared sub-policies, per-task masters, W/U schedule")
def train_mlsh(cfg: DictConfig, runs: list[Run]) -> list[dict[str, float]]:
    """Option learning with MLSH's warm-up/joint schedule, then transfer with frozen sub-policies; every member of
    the population at once."""
    summaries = run_protocol(runs, make_mlsh_phase)
    for summary in summaries:
        if "options/eval/options_same_goal" in summary:  # Moving Bandits: the key MSOL's summary uses too
            summary["options/same_goal_fraction"] = summary["options/eval/options_same_goal"]
    return summaries
