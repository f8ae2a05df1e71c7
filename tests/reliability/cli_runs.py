"""Helpers of the reliability tests: run the CLI, read a run directory (``from cli_runs import ...``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import TIMING_KEYS

# Moving Bandits, 1% of the paper's budget, 2 slots x 2 envs, a checkpoint after every log row: ~700 updates.
TINY = ("env=moving_bandits", "budget_scale=0.01", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
        "checkpoint_interval_s=0.0001", "logger.progress_bar=false")


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "msol.train", *args]


def run_cli(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), check=False, cwd=cwd, env=env or cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def metric_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]
