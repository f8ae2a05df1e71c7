"""Numerical faults: a NaN/inf in an observation, a loss or a gradient stops the run with a message naming where,
exit status 3, and the last good checkpoint is kept (loadable, finite, resumable)."""

from __future__ import annotations

import fcntl
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runs import TINY, cli_env, metric_rows
from helpers import compose_cfg
from omegaconf import OmegaConf

import msol.common.protocol as protocol_module
import msol.soft_options.trainer as msol_trainer
from msol.common.checkpoint import load_checked
from msol.common.numerics import NumericalFault
from msol.common.run import Run
from msol.train import train

POISON_AFTER_STEPS = 150  # env steps of the training env: a few log rows (and checkpoints) are written first


def poisoned_make_env(original, value: float, after: int = POISON_AFTER_STEPS):
    """``make_env`` whose training envs start returning ``value`` in one observation entry after ``after`` steps."""

    def make_env(cfg, slot_tasks, *, envs_per_slot, **kwargs):
        env = original(cfg, slot_tasks, envs_per_slot=envs_per_slot, **kwargs)
        if envs_per_slot != int(cfg.algo.envs_per_slot):  # evaluation envs stay clean
            return env
        step, calls = env.step, [0]

        def poisoned_step(actions):
            out = step(actions)
            calls[0] += 1
            if calls[0] > after:
                out.obs[0, 0] = value
            return out

        env.step = poisoned_step
        return env

    return make_env


def assert_last_good_checkpoint_kept(run_dir, message: str) -> None:
    assert "last good checkpoint kept" in message and str(run_dir) in message
    assert not (run_dir / "summary.json").exists()
    state = load_checked(run_dir / "checkpoints" / "latest.pt")
    params = [t for t in _tensors(state) if t.is_floating_point()]
    assert params and all(bool(torch.isfinite(t).all()) for t in params)
    assert int(state["metrics_rows"]) <= len(metric_rows(run_dir))
    with open(run_dir / "run.lock") as handle:  # released: the run can be resumed at once
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _tensors(state):
    if torch.is_tensor(state):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from _tensors(value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            yield from _tensors(value)


@pytest.mark.parametrize("value, word", [(math.nan, "NaN"), (math.inf, "inf")])
def test_non_finite_observation_stops_the_run(tmp_path, monkeypatch, value, word):
    monkeypatch.setattr(protocol_module, "make_env", poisoned_make_env(protocol_module.make_env, value))
    run_dir = tmp_path / "run"
    with pytest.raises(NumericalFault, match=rf"^{word} in observations") as fault:
        train(compose_cfg(*TINY, f"run_dir={run_dir}"))
    assert_last_good_checkpoint_kept(run_dir, str(fault.value))


@pytest.mark.parametrize("algo, overrides", [("mlsh", ["algo.rollout_steps=20", "env.hparams.log_interval_frames_per_task=20"]), ("option_critic", [])])
def test_non_finite_observation_stops_the_baselines(tmp_path, monkeypatch, algo, overrides):
    """MLSH and Option-Critic check observations at update time; a NaN that reaches action sampling first is
    caught there and named by its code location."""
    monkeypatch.setattr(protocol_module, "make_env", poisoned_make_env(protocol_module.make_env, math.nan))
    run_dir = tmp_path / "run"
    with pytest.raises(NumericalFault, match=rf"NaN in observations|NaN/inf in the parameters of a distribution "
                                             rf"in {algo}/learner.py:\d+ .*an observation") as fault:
        train(compose_cfg(*TINY, f"algo={algo}", *overrides, f"run_dir={run_dir}"))
    assert_last_good_checkpoint_kept(run_dir, str(fault.value))


def test_non_finite_loss_stops_the_run(tmp_path, monkeypatch):
    original, calls = msol_trainer.msol_a2c_loss, [0]

    def loss_turning_nan(*args, **kwargs):
        loss, stats = original(*args, **kwargs)
        calls[0] += 1
        return (loss * math.nan if calls[0] > 40 else loss), stats

    monkeypatch.setattr(msol_trainer, "msol_a2c_loss", loss_turning_nan)
    run_dir = tmp_path / "run"
    with pytest.raises(NumericalFault, match="NaN in loss") as fault:
        train(compose_cfg(*TINY, f"run_dir={run_dir}"))
    assert_last_good_checkpoint_kept(run_dir, str(fault.value))


def test_non_finite_gradient_names_the_parameter(tmp_path, monkeypatch):
    original, calls, poisoned = msol_trainer._make_policy, [0], []

    def policy_with_poisoned_gradient(*args, **kwargs):
        policy = original(*args, **kwargs)
        name, param = next(iter(policy.named_parameters()))  # the first one the check looks at

        def hook(grad):
            calls[0] += 1
            return grad * math.nan if calls[0] > 40 else grad

        param.register_hook(hook)
        poisoned.append(name)
        return policy

    monkeypatch.setattr(msol_trainer, "_make_policy", policy_with_poisoned_gradient)
    run_dir = tmp_path / "run"
    with pytest.raises(NumericalFault, match=r"NaN in gradient of ") as fault:
        train(compose_cfg(*TINY, f"run_dir={run_dir}"))
    assert f"gradient of {poisoned[0]};" in str(fault.value)
    assert_last_good_checkpoint_kept(run_dir, str(fault.value))


def _run(tmp_path) -> Run:
    cfg = compose_cfg(*TINY)
    OmegaConf.set_struct(cfg, False)
    return Run(cfg, tmp_path / "run")


def test_a_checkpoint_with_a_non_finite_tensor_is_not_written(tmp_path):
    run = _run(tmp_path)
    run.log(10, {"loss/total": 1.0})
    run.save_checkpoint({"policy": {"w": torch.ones(3)}})
    good = (run.checkpoint_dir / "latest.pt").read_bytes()
    with pytest.raises(NumericalFault, match=r"NaN in checkpoint state .*policy\.w"):
        run.save_checkpoint({"policy": {"w": torch.tensor([1.0, math.nan, 2.0])}})
    assert (run.checkpoint_dir / "latest.pt").read_bytes() == good
    run.abort()


def test_a_logged_non_finite_loss_stops_the_run(tmp_path):
    """The guard every algorithm gets (also SB3-based ones, whose losses arrive as logged metrics)."""
    run = _run(tmp_path)
    run.log(10, {"return/mean": math.nan, "episodes": 0})  # a NaN mean over no episodes is a fact, not a fault
    with pytest.raises(NumericalFault, match=r"inf in logged metric 'train/value_loss' \(train row at step 20\)"):
        run.log(20, {"train/value_loss": np.float32(np.inf)})
    run.abort()


def test_cli_exits_3_with_one_line(tmp_path):
    """``python -m msol.train`` with an env that starts returning NaN: exit 3, one line, checkpoint kept."""
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    script = (
        "import sys, msol.common.protocol as t\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]\n"  # cli_runs, helpers
        "from test_numerical_faults import poisoned_make_env\n"
        "t.make_env = poisoned_make_env(t.make_env, float('nan'))\n"
        f"sys.argv = ['msol.train', *{list(TINY)!r}, 'run_dir={run_dir}']\n"
        "from msol.train import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=tmp_path, env=cli_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 3, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("msol.train: numerical fault: NaN in observations"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert_last_good_checkpoint_kept(run_dir, lines[-1])
