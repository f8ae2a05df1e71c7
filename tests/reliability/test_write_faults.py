"""The machine refusing a write (disk full, read-only file system, permission denied): one line naming the path
and the cause, exit 4, and the last good checkpoint intact."""

from __future__ import annotations

import errno
import os

import pytest
import torch
from cli_runs import TINY, run_cli
from helpers import compose_cfg

from msol.common import checkpoint as checkpoint_module
from msol.common.checkpoint import WriteError, load_checked, save_atomic
from msol.train import train, unwritable


def test_a_checkpoint_write_that_fails_leaves_the_previous_one_intact(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_atomic({"w": torch.ones(3)}, path)
    good = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full)
    with pytest.raises(WriteError, match=r"cannot write .*latest.pt: No space left on device \(errno 28\)"):
        save_atomic({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]  # no temporary left behind

    def torch_on_full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 123 vs 456")

    monkeypatch.setattr(checkpoint_module.torch, "save", torch_on_full_disk)
    with pytest.raises(WriteError, match=r"unexpected pos .*\(the disk may be full\)"):
        save_atomic({"w": torch.zeros(3)}, path)
    assert path.read_bytes() == good


def test_a_run_whose_disk_fills_up_stops_with_the_checkpoint_it_had(tmp_path, monkeypatch):
    real_save, calls = torch.save, [0]

    def fills_up(*args, **kwargs):
        calls[0] += 1
        if calls[0] > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "save", fills_up)
    run = tmp_path / "run"
    with pytest.raises(WriteError, match="No space left on device"):
        train(compose_cfg(*TINY, "checkpoint_interval_s=0.0001"), run_dir=run)
    assert load_checked(run / "checkpoints" / "latest.pt")["frames"] > 0  # the last good one


def test_cli_into_a_folder_it_cannot_write_is_one_line_and_exit_4(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli(*TINY, f"run_dir={blocker / 'run'}", cwd=tmp_path, timeout=120)
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"msol.train: error: cannot write {blocker / 'run'}: {blocker} is not a folder"


def test_read_only_folders_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # root may write anywhere: pretend we may not
    assert "read-only" in unwritable(tmp_path / "runs" / "x") and str(tmp_path) in unwritable(tmp_path / "x")


def test_a_refused_write_during_training_exits_4_with_one_line(monkeypatch, capsys):
    from msol import train as train_module

    def refused(cfg):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), "/runs/x/metrics.jsonl")

    monkeypatch.setattr(train_module, "train", refused)
    with pytest.raises(SystemExit) as stop:
        train_module._train_or_exit(compose_cfg(*TINY))
    assert stop.value.code == 4
    assert capsys.readouterr().err.strip() == ("msol.train: error: cannot write /runs/x/metrics.jsonl: Read-only file "
                                               "system (errno 30); the last good checkpoint (if any) is kept")
