"""Corrupt artefacts: a truncated, tampered or code-carrying checkpoint is a clear error (exit 2 from the CLI),
never a silent fresh start; the run directory is left exactly as it was."""

from __future__ import annotations

import fcntl
import io
import os
import pickle
import zipfile

import pytest
import torch
from cli_runs import TINY, run_cli
from helpers import compose_cfg
from omegaconf import OmegaConf

from msol.common.checkpoint import CheckpointError, load_checked, save_atomic
from msol.common.run import Run, RunDirError

# A distinctive tensor whose bytes are easy to find inside the checkpoint file.
MARKER = torch.full((64,), 1234.5)


def _interrupted_run(tmp_path):
    """A run directory as a killed run leaves it: config, 3 metrics rows, a checkpoint after row 2, no summary."""
    cfg = compose_cfg(*TINY)
    run = Run(cfg, tmp_path / "run")
    run.log(10, {"loss/total": 1.0})
    run.log(20, {"loss/total": 0.5})
    run.save_checkpoint({"policy": {"w": MARKER.clone()}, "phase_index": 0})
    run.log(30, {"loss/total": 0.25})
    run.abort()
    return cfg, run.dir


def _resume(cfg, run_dir):
    cfg = cfg.copy()
    OmegaConf.update(cfg, "resume", str(run_dir))
    return Run(cfg, run_dir, resume=True)


def _snapshot(run_dir):
    """The run's record (Hydra's own notes, .hydra/ and train.log, are rewritten by every start and not part of it)."""
    names = ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints")
    return {p.relative_to(run_dir): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.relative_to(run_dir).parts[0] in names}


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_marker_byte(path):
    data = bytearray(path.read_bytes())
    at = bytes(data).find(MARKER.numpy().tobytes())
    assert at >= 0
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))


def _edit_and_resave(path):
    """Tampering that keeps a valid file: change a weight and save again without the writer's checksum."""
    state = torch.load(path, weights_only=True)
    state["policy"]["w"][0] = 0.0
    torch.save(state, path)


def _drop_checksum(path):
    state = torch.load(path, weights_only=True)
    del state["sha256"]
    torch.save(state, path)


def _garbage(path):
    path.write_bytes(os.urandom(4096))


def _empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("corrupt, message", [
    (_truncate, "unreadable"),
    (_flip_marker_byte, "checksum|unreadable"),
    (_edit_and_resave, "does not match its checksum"),
    (_drop_checksum, "no 'sha256' field"),
    (_garbage, "unreadable"),
    (_empty, "unreadable"),
])
def test_corrupt_checkpoint_is_refused_and_nothing_changes(tmp_path, corrupt, message):
    cfg, run_dir = _interrupted_run(tmp_path)
    corrupt(run_dir / "checkpoints" / "latest.pt")
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError, match=message):
        _resume(cfg, run_dir)
    assert _snapshot(run_dir) == before  # metrics not cut, checkpoint not replaced
    with pytest.raises(RunDirError, match="already holds a checkpoint"):  # nor silently restarted
        Run(cfg, run_dir)
    assert _snapshot(run_dir) == before


class _RunsCode:
    """Unpickling this calls ``open(<path>, "w")``: a stand-in for any code a hostile checkpoint could run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    cfg, run_dir = _interrupted_run(tmp_path)
    pwned = tmp_path / "pwned"
    torch.save({"format": 2, "metrics_rows": 2, "policy": _RunsCode(pwned)}, run_dir / "checkpoints" / "latest.pt")
    with pytest.raises(CheckpointError, match="would run code.*weights_only=True"):
        _resume(cfg, run_dir)
    assert not pwned.exists()


def test_plain_pickle_with_code_is_refused(tmp_path):
    pwned = tmp_path / "pwned"
    path = tmp_path / "latest.pt"
    path.write_bytes(pickle.dumps({"format": 2, "x": _RunsCode(pwned)}))
    with pytest.raises(CheckpointError):
        load_checked(path)
    assert not pwned.exists()


def test_metrics_shorter_than_the_checkpoint_is_refused(tmp_path):
    cfg, run_dir = _interrupted_run(tmp_path)
    (run_dir / "metrics.jsonl").write_text((run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)[0])
    with pytest.raises(RunDirError, match="metrics.jsonl has 1 rows but the checkpoint was written after 2"):
        _resume(cfg, run_dir)


def test_checkpoint_of_another_format_is_refused_and_nothing_changes(tmp_path):
    """A valid checkpoint written by an msol version with another state layout: refused by name, never half-read."""
    cfg, run_dir = _interrupted_run(tmp_path)
    latest = run_dir / "checkpoints" / "latest.pt"
    state = load_checked(latest)
    state["format"] = 2
    save_atomic({k: v for k, v in state.items() if k != "sha256"}, latest)
    before = _snapshot(run_dir)
    with pytest.raises(CheckpointError, match=r"checkpoint format 2, this version of msol reads format 5 only"):
        _resume(cfg, run_dir)
    assert _snapshot(run_dir) == before
    with open(run_dir / "run.lock") as handle:  # the refused resume released the lock
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_resume_cuts_metrics_to_the_checkpoint_and_removes_stale_temporaries(tmp_path):
    cfg, run_dir = _interrupted_run(tmp_path)
    stale = run_dir / "checkpoints" / ".latest.pt.abc123.tmp"  # what a kill during save_atomic leaves
    stale.write_bytes(b"half a checkpoint")
    run = _resume(cfg, run_dir)
    assert [r["step"] for r in run.read_metrics()] == [10, 20]
    assert torch.equal(run.load_checkpoint()["policy"]["w"], MARKER)
    assert not stale.exists()
    run.abort()


def test_checkpoint_of_a_value_weights_only_would_refuse_fails_at_save_time(tmp_path):
    import numpy as np

    with pytest.raises(TypeError, match=r"state\.rng is a numpy\.ndarray.*torch\.as_tensor"):
        save_atomic({"format": 2, "rng": np.zeros(3)}, tmp_path / "latest.pt")
    assert not any(tmp_path.iterdir())


def test_saved_checkpoint_is_a_plain_torch_zip(tmp_path):
    """Readable with ``torch.load(weights_only=True)`` alone: no msol code is needed to inspect a checkpoint."""
    save_atomic({"format": 2, "w": MARKER}, tmp_path / "latest.pt")
    assert zipfile.is_zipfile(tmp_path / "latest.pt")
    state = torch.load(io.BytesIO((tmp_path / "latest.pt").read_bytes()), weights_only=True)
    assert torch.equal(state["w"], MARKER) and len(state["sha256"]) == 64


def test_cli_resume_from_truncated_checkpoint_exits_2(tmp_path):
    _, run_dir = _interrupted_run(tmp_path)
    _truncate(run_dir / "checkpoints" / "latest.pt")
    before = _snapshot(run_dir)
    result = run_cli(*TINY, f"resume={run_dir}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "msol.train: error: checkpoint" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert _snapshot(run_dir) == before
