"""``python -m msol.train env=<env> algo=mlsh``: MLSH inside the shared protocol, run directory and checkpoints."""

from __future__ import annotations

from omegaconf import DictConfig

from baselines.mlsh.learner import MLSHPhase
from baselines.mlsh.networks import MLSHPolicy
from baselines.mlsh.protocol import run_protocol
from msol.algorithms import register_algorithm
from msol.envs_adapter import MultitaskEnv
from msol.run import Run
from msol.trainer import PhaseSpec


def check_mlsh_config(algo: DictConfig) -> None:
    """Reject values the generic config check does not know, naming the key, the value and what is valid."""
    rules = {
        "macro_duration": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "warmup": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
        "joint": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "rollout_steps": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "num_subs": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "master_batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "sub_minibatches": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "random_sub_prob": (lambda v: isinstance(v, (int, float)) and 0 <= v <= 1, "a probability in [0, 1]"),
        "master_lr": (lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0"),
        "sub_lr": (lambda v: isinstance(v, (int, float)) and v > 0, "a number > 0"),
    }
    for key, (ok, valid) in rules.items():
        value = algo.get(key)
        if not ok(value) or isinstance(value, bool):
            raise ValueError(f"algo.{key}={value!r}: must be {valid}")


def make_mlsh_phase(cfg: DictConfig, spec: PhaseSpec, env: MultitaskEnv, previous: MLSHPhase | None) -> MLSHPhase:
    """Option learning: fresh masters and sub-policies. Transfer: the learned sub-policies, frozen; fresh masters."""
    if spec.name not in ("options", "transfer"):
        raise ValueError(f"algo.phases: {spec.name!r} is not an MLSH phase; valid: options, transfer")
    if env.continuous:
        raise ValueError(f"algo=mlsh supports discrete actions only; env={cfg.env.name} has continuous actions")
    policy = MLSHPolicy(env.obs_dim, env.action_dim, num_slots=spec.num_slots, num_subs=int(cfg.algo.num_subs),
                        hidden=list(cfg.algo.hidden))
    if spec.name == "transfer":
        if previous is not None:  # when resuming into transfer, the checkpoint brings the sub-policies
            shared = {k: v for k, v in previous.model.state_dict().items() if k.startswith(("sub_pi.", "sub_v."))}
            policy.load_state_dict(shared, strict=False)
        for param in policy.sub_parameters():
            param.requires_grad_(False)
    return MLSHPhase(cfg, spec, env, policy)


@register_algorithm("mlsh", action_spaces=("discrete",),
                    description="MLSH (Frans et al. 2017): hard shared sub-policies, per-task masters, W/U schedule")
def train_mlsh(cfg: DictConfig, run: Run) -> dict[str, float]:
    """Option learning with MLSH's warm-up/joint schedule, then transfer with frozen sub-policies."""
    check_mlsh_config(cfg.algo)
    return run_protocol(cfg, run, make_mlsh_phase)
