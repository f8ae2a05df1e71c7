"""W&B never stops training: offline by default, online without a server falls back to an offline run."""

from __future__ import annotations

import pytest

from msol.common.wandb_sink import WandbSink


def _sink(tmp_path, mode):
    return WandbSink(tmp_path, project="msol-test", mode=mode, group="g", job_type="msol", tags=["mb", "seed0"],
                     config={"seed": 0}, name="run", run_id="run-abc", init_timeout=15)


def test_offline_run_is_written_for_later_sync(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    sink = _sink(tmp_path, "offline")
    assert sink.active and not sink.warned
    sink.log(10, {"return/mean": 1.5})
    sink.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1 and runs[0].stat().st_size > 0


def test_online_without_server_falls_back_to_offline_and_warns_once(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "")
    sink = _sink(tmp_path, "online")
    sink.log(1, {"x": 1.0})
    sink.log(2, {"x": 2.0})
    sink.finish()
    err = capsys.readouterr().err
    assert err.count("[msol] warning") == 1 and "wandb sync" in err
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_disabled_sink_is_inert(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    sink = _sink(tmp_path, "disabled")
    sink.log(1, {"x": 1.0})  # must not raise
    sink.finish()
    assert not sink.active or not list((tmp_path / "wandb").glob("offline-run-*"))


@pytest.fixture(autouse=True)
def _isolated_wandb_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
