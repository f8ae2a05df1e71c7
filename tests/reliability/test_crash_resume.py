"""SIGKILL at random points, resume from the run directory, and end bit-for-bit where an uninterrupted run ends.

Each algorithm runs once uninterrupted (in-process) and once as a chain of CLI processes killed with SIGKILL at
several random points (a checkpoint is written after every log row, so kills land before, during and after writes),
each resumed with ``resume=<run dir>``. Final metrics (all but timing columns), summary and every tensor of the final
checkpoints must be equal. Between kills, ``checkpoints/latest.pt`` must always load.
"""

from __future__ import annotations

import json
import math
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from cli_runs import TINY, cli_command, cli_env, metric_rows, run_cli, without_timing
from helpers import TIMING_KEYS, compose_cfg

from msol.common.checkpoint import load_checked
from msol.train import train

# algo -> (extra overrides, kills). Exact resume: the run's full state (networks, optimisers, env arrays, RNGs) is in
# the checkpoint. The normal suite covers each code path (the MSOL trainer in its hierarchical and flat forms, the
# shared protocol of MLSH / Option-Critic); `make test-slow` adds every other configuration of them.
EXACT = {
    "msol": ((), 3),
    "a2c": ((), 2),
    "mlsh": (("budget_scale=0.001", "algo.rollout_steps=50", "env.hparams.eval_interval_frames_per_task=500000"), 2),
}
EXACT_SLOW = {
    "msol_frozen": ((), 3),
    "distral": ((), 3),
    "distral_action": ((), 3),
    "ppo": ((), 3),
    "hard_options": ((), 3),
    "option_critic": ((), 3),
}


def _row_count(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def kill_resume_chain(args: list[str], run_dir: Path, kill_at_rows: list[int], cwd: Path) -> None:
    """Start ``args`` in ``run_dir``; SIGKILL it once it has logged ``kill_at_rows[0]`` rows, resume, kill at the
    next count, ...; then resume to the end."""
    for i, rows in enumerate(kill_at_rows):
        where = f"resume={run_dir}" if i else f"run_dir={run_dir}"
        proc = subprocess.Popen(cli_command(*args, where), cwd=cwd, env=cli_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        deadline = time.time() + 600
        while proc.poll() is None and time.time() < deadline:
            if _row_count(run_dir) >= rows and (run_dir / "checkpoints" / "latest.pt").exists():
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"process {i} ended before the kill: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        assert not (run_dir / "summary.json").exists()
        load_checked(run_dir / "checkpoints" / "latest.pt")  # never half-written
    result = run_cli(*args, f"resume={run_dir}", cwd=cwd, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


def assert_same_run(expected: Path, actual: Path) -> None:
    assert without_timing(metric_rows(actual)) == without_timing(metric_rows(expected))
    summary = [{k: v for k, v in json.loads((d / "summary.json").read_text()).items() if k not in TIMING_KEYS}
               for d in (expected, actual)]
    assert summary[1] == summary[0]
    names = sorted(p.name for p in (expected / "checkpoints").glob("*.pt"))
    assert names == sorted(p.name for p in (actual / "checkpoints").glob("*.pt"))
    for name in names:
        want, got = (load_checked(d / "checkpoints" / name) for d in (expected, actual))
        assert_equal_state(want, got, name)


# Wall-clock fields of a checkpoint (gymnasium's RecordEpisodeStatistics keeps episode start times).
STATE_TIMING_KEYS = TIMING_KEYS | {"_start_times"}


def assert_equal_state(want, got, where: str) -> None:
    if isinstance(want, dict):
        keys = set(want) - STATE_TIMING_KEYS
        assert keys == set(got) - STATE_TIMING_KEYS, where
        for key in keys:
            assert_equal_state(want[key], got[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(want) == len(got), where
        for i, (w, g) in enumerate(zip(want, got)):
            assert_equal_state(w, g, f"{where}[{i}]")
    elif torch.is_tensor(want):
        assert torch.equal(want, got), f"{where} differs"
    else:
        both_nan = isinstance(want, float) and isinstance(got, float) and math.isnan(want) and math.isnan(got)
        assert want == got or both_nan, f"{where}: {want!r} != {got!r}"


@pytest.mark.parametrize("algo", [*sorted(EXACT), *(pytest.param(a, marks=pytest.mark.slow) for a in sorted(EXACT_SLOW))])
def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path, algo):
    overrides, n_kills = {**EXACT, **EXACT_SLOW}[algo]
    args = [*TINY, f"algo={algo}", *overrides]
    full = tmp_path / "full"
    train(compose_cfg(*args, f"run_dir={full}"))
    total = len(metric_rows(full))
    rng = random.Random(f"kill points {algo}")
    kills = sorted(rng.sample(range(2, total - 1), n_kills))
    cut = tmp_path / "cut"
    kill_resume_chain(args, cut, kills, cwd=tmp_path)
    assert_same_run(full, cut)


# Resumable but not bit-exact: their env episodes restart on resume (MuJoCo state is not checkpointed; SB3 keeps its
# own env loop). After a kill they must still resume to a complete run with the same row schedule.
RESUMABLE = {
    "trust_pcl": ("env=swimmer", "budget_scale=0.003", "env.hparams.eval_interval_frames_per_task=500",
                  "env.hparams.log_interval_frames_per_task=250", "logger.progress_bar=false",
                  "checkpoint_interval_s=0.0001"),
    "trpo": ("env=swimmer", "budget_scale=0.003", "algo.n_steps=256", "algo.batch_size=64",
             "env.hparams.eval_interval_frames_per_task=500", "env.hparams.log_interval_frames_per_task=250",
             "logger.progress_bar=false", "checkpoint_interval_s=0.0001"),
    "sb3_ppo": ("env=ess_defender", "budget_scale=0.02", "algo.eval_games=50", "logger.progress_bar=false",
                "checkpoint_interval_s=0.0001"),
}


@pytest.mark.slow
@pytest.mark.parametrize("algo", [
    "trust_pcl", "trpo",
    pytest.param("sb3_ppo", marks=pytest.mark.xfail(strict=False, reason=(
        "baselines/ess: after a resume SB3's learn(remaining) rounds up to whole rollouts, so the resumed run "
        "can train past the budget (seen: final row at 2096 instead of 2000 frames), depending on where the kill "
        "lands"))),
])
def test_sigkill_then_resume_completes_the_run(tmp_path, algo):
    args = [f"algo={algo}", *RESUMABLE[algo]]
    full = tmp_path / "full"
    train(compose_cfg(*args, f"run_dir={full}"))
    expected = [(row["step"], row["phase"]) for row in metric_rows(full)]
    cut = tmp_path / "cut"
    kill_resume_chain(args, cut, [max(1, len(expected) // 2)], cwd=tmp_path)
    assert [(row["step"], row["phase"]) for row in metric_rows(cut)] == expected
    summary = json.loads((cut / "summary.json").read_text())
    assert math.isfinite(summary["objective"])


WRITER = """
import sys, torch
from msol.common.checkpoint import save_atomic
i = 0
while True:
    save_atomic({"format": 2, "metrics_rows": i, "w": torch.full((300_000,), float(i))}, sys.argv[1])
    i += 1
"""


def test_sigkill_during_checkpoint_writes_never_leaves_a_half_written_file(tmp_path):
    """A writer saving in a tight loop is killed the moment a write is seen in progress (its temporary file exists);
    ``latest.pt`` always loads and is self-consistent. Kills that landed mid-write leave that temporary file behind
    (resume deletes it); at least 2 must have."""
    import sys

    from msol.common.checkpoint import remove_stale_temporaries

    path = tmp_path / "checkpoints" / "latest.pt"
    mid_write = attempts = 0
    while mid_write < 2 and attempts < 10:
        attempts += 1
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=tmp_path, env=cli_env())
        deadline = time.time() + 120
        while not path.exists() and time.time() < deadline:  # one complete checkpoint first
            time.sleep(0.01)
        while not list(path.parent.glob(".latest.pt.*")) and time.time() < deadline:
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = load_checked(path)
        assert bool((state["w"] == float(state["metrics_rows"])).all())
        mid_write += bool(remove_stale_temporaries(path.parent))
    assert mid_write >= 2, f"only {mid_write} of {attempts} kills landed during a write"


def test_second_process_on_a_live_run_directory_is_refused(tmp_path):
    from msol.common.run import Run

    run_dir = tmp_path / "run"
    holder = Run(compose_cfg(*TINY), run_dir)  # this test process is "the first training process"
    try:
        for where in (f"run_dir={run_dir}", f"resume={run_dir}"):
            result = run_cli(*TINY, where, cwd=tmp_path, timeout=120)
            assert result.returncode == 2
            assert "is in use by another training process" in result.stderr, result.stderr[-2000:]
            assert "Traceback" not in result.stderr
    finally:
        holder.abort()


def test_sigkill_then_resume_of_a_population_equals_uninterrupted(tmp_path):
    """Two members in one process, killed at random points (also between the members' checkpoint writes) and resumed
    with ``resume=<first member>``: every member ends exactly where an uninterrupted population ends."""
    args = [*(o for o in TINY if not o.startswith("budget_scale=")), "budget_scale=0.004", "algo=msol", "population=2"]
    full = tmp_path / "full" / "s0"
    train(compose_cfg(*args, f"run_dir={full}"))
    total = len(metric_rows(full))
    kills = sorted(random.Random("kill points population").sample(range(2, total - 1), 2))
    cut = tmp_path / "cut" / "s0"
    kill_resume_chain(args, cut, kills, cwd=tmp_path)
    for seed in (0, 1):
        assert_same_run(full.with_name(f"s{seed}"), cut.with_name(f"s{seed}"))
