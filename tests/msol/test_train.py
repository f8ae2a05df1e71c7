"""The training entry point: CLI errors, run directory, a short learning run, exact resume after SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import TIMING_KEYS, compose_cfg

from msol.train import train

_cfg = compose_cfg


def _cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="disabled")
    return subprocess.run([sys.executable, "-m", "msol.train", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("group, valid", [("env", "taxi"), ("algo", "msol"), ("logger", "wandb")])
def test_unknown_group_name_lists_valid_ones(tmp_path, group, valid):
    result = _cli(f"{group}=nope", cwd=tmp_path)
    assert result.returncode == 2
    assert f"unknown {group} 'nope'" in result.stderr and valid in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_value_is_one_clear_line(tmp_path):
    result = _cli("env=moving_bandits", "algo.lr=-1", cwd=tmp_path)
    assert result.returncode == 2
    assert "algo.lr=-1" in result.stderr and "> 0" in result.stderr
    assert "Traceback" not in result.stderr


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


TINY = ["env=moving_bandits", "budget_scale=0.01", "env.hparams.num_slots=4", "env.hparams.envs_per_slot=2",
        "logger.progress_bar=false"]


def test_run_directory_layout(tmp_path):
    summary = train(_cfg(*TINY), run_dir=tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints/latest.pt",
                 "checkpoints/options.pt", "checkpoints/transfer.pt"):
        assert (run / name).exists(), name
    rows = _rows(run)
    phases = {r["phase"] for r in rows}
    assert {"options", "options/eval", "transfer", "transfer/eval"} <= phases
    assert all("return/goal0" in r or "return/goal1" in r or r["episodes"] == 0 for r in rows if r["phase"] == "transfer")
    assert json.loads((run / "summary.json").read_text())["objective"] == summary["objective"]
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps)


def test_second_process_on_same_run_dir_is_refused(tmp_path):
    run = tmp_path / "run"
    train(_cfg(*TINY), run_dir=run)
    from msol.common.run import RunDirError

    with pytest.raises(RunDirError, match="already holds a checkpoint"):
        train(_cfg(*TINY), run_dir=run)


def _uninterrupted_rows(args: list[str], tmp_path: Path) -> list[dict]:
    full = tmp_path / "full"
    assert _cli(*args, f"run_dir={full}", cwd=tmp_path).returncode == 0
    return _strip(_rows(full))


def _start_until_rows(args: list[str], run_dir: Path, rows: int, cwd: Path) -> subprocess.Popen:
    """A training process on ``run_dir``, returned once it has logged ``rows`` metrics rows (or after 120 s)."""
    env = dict(os.environ, WANDB_MODE="disabled")
    proc = subprocess.Popen([sys.executable, "-m", "msol.train", *args, f"run_dir={run_dir}"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run_dir / "metrics.jsonl").exists() and len(_rows(run_dir)) >= rows):
        time.sleep(0.02)
    return proc


def test_init_from_continues_another_runs_option_learning_exactly(tmp_path):
    """MSOL(frozen) from an MSOL run's option learning: same option rows, and the same transfer as a full run."""
    from msol.common.run import RunDirError

    source, frozen, full = tmp_path / "msol", tmp_path / "frozen", tmp_path / "frozen_full"
    train(_cfg(*TINY), run_dir=source)
    train(_cfg(*TINY, "algo=msol_frozen", f"init_from={source}"), run_dir=frozen)
    train(_cfg(*TINY, "algo=msol_frozen"), run_dir=full)  # its own, identical, option learning
    options = [r for r in _strip(_rows(source)) if r["phase"].startswith("options")]
    assert options and [r for r in _strip(_rows(frozen)) if r["phase"].startswith("options")] == options
    assert _strip(_rows(frozen)) == _strip(_rows(full))
    summary = json.loads((frozen / "summary.json").read_text())
    assert summary["options/eval/return/mean"] == json.loads((source / "summary.json").read_text())[
        "options/eval/return/mean"]
    with pytest.raises(RunDirError, match=r"algo.lr: 0.001 -> 0.002"):
        train(_cfg(*TINY, "algo=msol_frozen", "algo.lr=0.002", f"init_from={source}"), run_dir=tmp_path / "bad")
    assert not (tmp_path / "bad" / "checkpoints").exists()


def _strict_json(text: str):
    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_every_json_file_a_run_writes_is_strict_json(tmp_path):
    """A mean over no episodes (transfer rows before the first episode ends) is null, not a bare NaN."""
    from msol.plot import plot_sweep

    train(_cfg(*TINY), run_dir=tmp_path / "sweep" / "run")
    rows = [_strict_json(line) for line in (tmp_path / "sweep" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("return/mean", 0) is None for r in rows)  # the case that used to be NaN
    _strict_json((tmp_path / "sweep" / "run" / "summary.json").read_text())
    report = plot_sweep(tmp_path / "sweep", tmp_path / "plot")
    _strict_json(report.json.read_text())


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run with a non-default budget stopped before writing its summary (its last checkpoint is the end)."""
    run = tmp_path_factory.mktemp("resume") / "run"
    train(_cfg(*TINY, "budget_scale=0.011", "algo.lr=0.002"), run_dir=run)
    (run / "summary.json").unlink()
    return run


def test_resume_alone_restores_the_runs_own_config_and_changes_no_byte_of_it(interrupted_run, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(interrupted_run, run)
    config = (run / "config.yaml").read_bytes()
    result = _cli(f"resume={run}", "logger.progress_bar=false", "checkpoint_interval_s=5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "config.yaml").read_bytes() == config and not (run / ".hydra").exists()
    assert json.loads((run / "summary.json").read_text())["objective"] is not None
    before = _tree_bytes(run)  # a finished run: resuming says so and changes nothing
    result = _cli(f"resume={run}", cwd=tmp_path)
    assert result.returncode == 0 and "finished" in result.stderr and _tree_bytes(run) == before


@pytest.mark.parametrize("change, named", [(["algo.lr=0.5"], "algo.lr: 0.002 in the run, 0.5 now"),
                                           (["env=taxi", "budget_scale=0.05"], "env: 'moving_bandits'"),
                                           (["algo.hidden=[32,32]"], "algo.hidden")])
def test_resume_that_would_change_the_run_is_refused_before_anything_is_written(interrupted_run, tmp_path, change,
                                                                                named):
    before = _tree_bytes(interrupted_run)
    result = _cli(f"resume={interrupted_run}", *change, cwd=tmp_path)
    assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert _tree_bytes(interrupted_run) == before


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_then_resume_equals_the_uninterrupted_run(tmp_path, sig):
    """Ctrl-C / SLURM's SIGTERM: the update in progress finishes, a checkpoint is written between log rows
    (pending statistics included), one line names the resume command, exit 128 + signal; resuming reproduces the
    uninterrupted run's rows exactly."""
    args = [*TINY, "checkpoint_interval_s=3600"]  # no timed checkpoint but the first
    expected = _uninterrupted_rows(args, tmp_path)
    cut = tmp_path / "cut"
    proc = _start_until_rows(args, cut, 5, tmp_path)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr[-2000:]
    assert f"continue with: python -m msol.train resume={cut}" in stderr.strip().splitlines()[-1]
    assert not (cut / "summary.json").exists()
    result = _cli(f"resume={cut}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _strip(_rows(cut)) == expected


def test_a_finished_cli_run_says_where_it_is_and_leaves_nothing_else_behind(tmp_path):
    run = tmp_path / "elsewhere" / "run"
    result = _cli(*TINY, f"run_dir={run}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    line = result.stdout.strip().splitlines()[-1]
    assert line.startswith(f"msol.train: finished {run}: final evaluation return ")
    assert f"plot: python -m msol.plot {run}" in line
    assert line in (run / "train.log").read_text()
    assert not (tmp_path / "runs").exists() and (run / ".hydra" / "config.yaml").exists()  # no stray directory


def test_a_fresh_run_into_a_finished_runs_directory_is_refused_before_hydra_writes_there(tmp_path):
    run = tmp_path / "run"
    train(_cfg(*TINY), run_dir=run)
    before = _tree_bytes(run)
    result = _cli(*TINY, f"run_dir={run}", cwd=tmp_path)
    assert result.returncode == 2 and "already holds a checkpoint" in result.stderr
    assert _tree_bytes(run) == before


def test_a_budget_that_is_not_whole_iterations_is_announced_and_counted(tmp_path, capsys):
    """7 steps × 2 envs per slot = 14 frames per task per iteration; option learning's 6,000 frames per task run as
    429 iterations = 6,006: said before the phase starts (stdout and train.log), and the progress bar counts them."""
    run = tmp_path / "run"
    train(_cfg(*[o for o in TINY if not o.startswith("logger.progress_bar")], "logger.progress_bar=true",
               "algo.n_steps=7"), run_dir=run)
    out, err = capsys.readouterr()
    line = "msol.train: phase options: 6,000 frames per task configured, 6,006 run (whole iterations of 14 frames " \
           "per task)"
    assert line in out.splitlines() and line in (run / "train.log").read_text().splitlines()
    options = [r for r in _rows(run) if r["phase"] == "options"]
    assert options[-1]["frames_per_task"] == 6006
    final = err.replace("\r", "\n").splitlines()
    totals = {m.split("/")[1] for m in re.findall(r"\|\s*[0-9.]+k?/[0-9.]+k? frames per task", "\n".join(final))}
    assert len(totals) == 1  # one total from the start, which the bar reaches


def test_progress_bar_shows_one_labelled_speed(tmp_path, capsys):
    train(_cfg(*[o for o in TINY if not o.startswith("logger.progress_bar")], "logger.progress_bar=true"),
          run_dir=tmp_path / "run")
    bar = capsys.readouterr().err
    assert "frames per task" in bar and "env_frames_per_s=" in bar
    assert "frame/s" not in bar and "it/s" not in bar  # tqdm's own (per-task) rate is not shown
