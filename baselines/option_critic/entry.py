"""``python -m msol.train env=<env> algo=option_critic``: multitask A2OC inside the shared protocol."""

from __future__ import annotations

from omegaconf import DictConfig

from msol.baselines.option_critic.learner import OptionCriticLearner
from msol.baselines.option_critic.networks import OptionCriticNetwork
from msol.baselines.option_critic.settings import OptionCriticSettings
from msol.common.algorithms import register_algorithm
from msol.common.device import build_on_cpu, learner_device
from msol.common.envs_adapter import MultitaskEnv
from msol.common.protocol import PhaseSpec, run_protocol, single_run
from msol.common.run import Run


def make_oc_phase(cfg: DictConfig, spec: PhaseSpec, env: MultitaskEnv, previous: OptionCriticLearner | None
                  ) -> OptionCriticLearner:
    """Transfer keeps training the same network (new task ids are new inputs); option learning and "scratch"
    start a fresh one."""
    if spec.name not in ("options", "transfer", "scratch"):
        raise ValueError(f"algo.phases: {spec.name!r} is not an Option-Critic phase; valid: options, transfer, scratch")
    if env.continuous:
        raise ValueError(f"algo=option_critic supports discrete actions only; env={cfg.env.name} has continuous "
                         "actions")
    if spec.name == "transfer" and previous is not None:
        phase = OptionCriticLearner(cfg, spec, env, previous.model)
        # The same network keeps learning: a fresh RMSprop state would make its first steps ~10x too large.
        phase.optimizer.load_state_dict(previous.optimizer.state_dict())
        return phase
    # Option learning, "scratch", or resuming into transfer (the checkpoint then brings weights and optimizer).
    net = build_on_cpu(lambda: OptionCriticNetwork(env.obs_dim, len(env.tasks), env.action_dim,
                                                   num_options=int(cfg.algo.num_options),
                                                   hidden=[*cfg.algo.hidden, int(cfg.algo.encoder_output_size)]),
                       learner_device(cfg))
    return OptionCriticLearner(cfg, spec, env, net)


@register_algorithm("option_critic", action_spaces=("discrete",), devices=("cpu", "cuda"),
                    settings=OptionCriticSettings,
                    description="Option-Critic (A2OC, Harb et al. 2018) with the task id as input")
def train_option_critic(cfg: DictConfig, run: Run) -> dict[str, float]:
    """Option learning on the training tasks, then the same network keeps learning on the transfer tasks."""
    return run_protocol([run], single_run(make_oc_phase))[0]
