"""Fixtures of the reliability tests (their helpers: ``cli_runs.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _quiet_wandb(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
