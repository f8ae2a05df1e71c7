"""SIGKILL at random points, resume from the run directory, and end bit-for-bit where an uninterrupted run ends.

Each algorithm runs once uninterrupted (in-process) and once as a chain of CLI processes killed with SIGKILL at
several random points (a checkpoint is written after every log row, so kills land before, during and after writes),
each resumed with ``resume=<run dir>``. Final metrics (all but timing columns), summary and every tensor of the final
checkpoints must be equal. Between kills, ``checkpoints/latest.pt`` must always load.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import TIMING_KEYS, TINY, cli_command, cli_env, compose_cfg, metric_rows, run_cli, without_timing

from msol.checkpoint import load_checked
from msol.train import train

# algo -> extra overrides. Exact resume: the run's full state (networks, optimisers, env arrays, RNGs) is in the
# checkpoint. Algorithms that restart env episodes on resume (gym/MuJoCo-backed, SB3) are not listed: see
# docs/reliability.md.
EXACT = {
    "msol": (),
    "msol_frozen": (),
    "distral": (),
    "distral_action": (),
    "a2c": (),
    "ppo": (),
    "hard_options": (),
    "mlsh": ("algo.rollout_steps=50",),
    "option_critic": (),
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
        assert want == got or (want != want and got != got), f"{where}: {want!r} != {got!r}"


@pytest.mark.parametrize("algo", sorted(EXACT))
def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path, algo):
    args = [*TINY, f"algo={algo}", *EXACT[algo]]
    full = tmp_path / "full"
    train(compose_cfg(*args, f"run_dir={full}"))
    total = len(metric_rows(full))
    rng = random.Random(f"kill points {algo}")
    kills = sorted(rng.sample(range(2, total - 1), 3))
    cut = tmp_path / "cut"
    kill_resume_chain(args, cut, kills, cwd=tmp_path)
    assert_same_run(full, cut)
