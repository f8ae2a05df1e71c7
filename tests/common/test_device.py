"""``device``: every torch learner puts its networks, rollouts and losses on ``cfg.device``.

This machine has no GPU. What would break on one is a tensor that a learner creates without naming its device: it
lands on the CPU beside CUDA networks. The test watches every tensor constructor (``torch.zeros``, ``as_tensor``,
``rand`` ...) that the package's own code calls during a short run of each learner, through a
``TorchFunctionMode``, and fails on each call that names no device (torch's own internals are not watched). The
constructors inside ``torch.device(...)`` blocks get that block's device and pass. ``tensor.numpy()`` fails on a
CUDA tensor; the CPU cannot show that either, so the learners' code is read for it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from helpers import compose_cfg
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from msol.train import train

_TINY_MSOL = ["env.hparams.hidden=[16]", "env.hparams.encoder_output_size=16", "env.hparams.option_embedding=4",
              "env.hparams.envs_per_slot=2", "env.hparams.num_slots=2"]

_SMALL_ESS = ["env.kwargs.K=5", "env.kwargs.potential=0.95", "env.hparams.log_interval_frames_per_task=200",
              "env.hparams.eval_interval_frames_per_task=400", "algo.eval_games=20", "algo.obs_stats_steps=200"]

# One short run per learner and per path through it (PPO in a population, A2C learning from scratch, continuous
# actions, the previous action as input, transfer with frozen options and primitives; the ESS agents, which
# stable-baselines3 places).
RUNS = {
    "msol-ppo-population": ["env=moving_bandits", "algo=msol", "algo.loss=ppo", "algo.ppo_minibatches=2",
                            "algo.ppo_epochs=2", "budget_scale=0.001", "population=2", *_TINY_MSOL],
    "distral_action": ["env=taxi", "algo=distral_action", "budget_scale=0.0005", *_TINY_MSOL],
    "hard_options_primitives": ["env=taxi", "algo=hard_options_primitives", "budget_scale=0.0005", *_TINY_MSOL],
    "a2c": ["env=taxi", "algo=a2c", "budget_scale=0.001", *_TINY_MSOL],
    "msol-continuous": ["env=directional_swimmer", "algo=msol", "budget_scale=0.00005", "env.hparams.n_steps=16",
                        "eval.episodes_per_slot=1", "+env.kwargs.max_episode_steps=50", *_TINY_MSOL],
    "mlsh": ["env=moving_bandits", "algo=mlsh", "budget_scale=0.0005", "population=2"],
    "option_critic": ["env=moving_bandits", "algo=option_critic", "budget_scale=0.0003"],
    "trust_pcl": ["env=acrobot", "algo=trust_pcl", "budget_scale=0.002"],
    "sb3_ppo": ["env=ess_defender", "algo=sb3_ppo", "algo.total_frames=400", *_SMALL_ESS],
    "ess_supervised": ["env=ess_defender", "algo=ess_supervised", "algo.total_frames=400",
                       "algo.supervised.epochs=2", *_SMALL_ESS],
    "ess_multiagent": ["env=ess_defender", "algo=ess_multiagent", "algo.rounds=2", "algo.total_frames=400",
                       *_SMALL_ESS],
}

ROOT = Path(__file__).resolve().parents[2]
WATCHED = tuple(str(ROOT / package) for package in ("msol", "baselines"))


class DevicelessConstructors(TorchFunctionMode):
    """Records ``file:line function`` of each tensor constructor called from the package without a device."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(WATCHED) and "/msol/envs/" not in caller:  # envs are numpy, on the CPU
                self.calls.add(f"{Path(caller).relative_to(ROOT)}:{sys._getframe(1).f_lineno} {func.__name__}")
        return func(*args, **kwargs)


@pytest.mark.parametrize("name", RUNS)
def test_learner_names_the_device_of_every_tensor_it_makes(name, tmp_path):
    cfg = compose_cfg(*RUNS[name], "device=cpu", f"run_dir={tmp_path / 'run'}")
    with DevicelessConstructors() as watch:
        summary = train(cfg)
    assert summary["objective"] == summary["objective"], summary  # finished with a number, not NaN
    assert not watch.calls, "tensors made without a device:\n" + "\n".join(sorted(watch.calls))


# ``tensor.numpy()`` fails on a CUDA tensor; the CPU cannot show it, so the learners' code is read instead.
LEARNER_PACKAGES = ["msol/soft_options", "msol/common", "baselines/mlsh", "baselines/option_critic",
                    "baselines/trust_pcl"]


def test_learners_copy_to_the_cpu_before_numpy():
    bare = []
    for package in LEARNER_PACKAGES:
        for path in sorted((ROOT / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "numpy":
                    receiver = node.func.value
                    on_cpu = (isinstance(receiver, ast.Call) and isinstance(receiver.func, ast.Attribute)
                              and receiver.func.attr == "cpu")
                    if not on_cpu:
                        bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, f".numpy() without .cpu() first: {bare}"
