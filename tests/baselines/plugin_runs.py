"""Helpers of the MLSH and Option-Critic tests: compose a config and train in-process with only one plugin loaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import TIMING_KEYS, compose_cfg
from omegaconf import DictConfig

import msol.common.algorithms
from msol.train import train


def composer(algo: str) -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides)`` for ``algo=<algo>``."""

    def compose_algo(*overrides: str) -> DictConfig:
        return compose_cfg(f"algo={algo}", *overrides)

    return compose_algo


def runner(algo: str, plugin: str) -> Callable[[pytest.MonkeyPatch, Path, list[str]], dict]:
    """``run_train(monkeypatch, run_dir, overrides)``: ``python -m msol.train algo=<algo> <overrides>`` in-process,
    loading only the ``plugin`` module's algorithms."""
    compose_cfg = composer(algo)

    def run_train(monkeypatch: pytest.MonkeyPatch, run_dir: Path, overrides: list[str]) -> dict:
        monkeypatch.setenv("WANDB_MODE", "disabled")
        monkeypatch.setattr(msol.common.algorithms, "_plugin_modules", lambda: (plugin,))
        monkeypatch.setattr(msol.common.algorithms, "_loaded", False)
        return train(compose_cfg(*overrides), run_dir=run_dir)

    return run_train


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


def cut_row(rows: list[dict], where: str) -> int:
    """1-based index of the row whose logging a test interrupts: ``options`` / ``transfer`` (mid phase) or
    ``phase change`` (the first transfer row)."""
    if where == "phase change":
        return next(i for i, r in enumerate(rows) if r["phase"].startswith("transfer")) + 1
    in_phase = [i for i, r in enumerate(rows) if r["phase"] == where]
    return in_phase[len(in_phase) // 2] + 1


class Interrupted(Exception):
    pass


def interrupted_then_resumed(monkeypatch: pytest.MonkeyPatch, run_train, run_dir: Path, overrides: list[str],
                             cut_at_row: int) -> list[dict]:
    """Train until the ``cut_at_row``-th metrics row is being logged, die there, resume; return the rows."""
    from msol.common.run import Run

    original_log, calls = Run.log, [0]

    def log_then_die(self, step, metrics, phase="train"):
        calls[0] += 1
        if calls[0] == cut_at_row:
            raise Interrupted
        original_log(self, step, metrics, phase)

    monkeypatch.setattr(Run, "log", log_then_die)
    with pytest.raises(Interrupted):
        run_train(monkeypatch, run_dir, overrides)
    monkeypatch.setattr(Run, "log", original_log)
    assert not (run_dir / "summary.json").exists()
    run_train(monkeypatch, run_dir, [*overrides, f"resume={run_dir}"])
    return read_rows(run_dir)
