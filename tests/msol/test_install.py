"""A regular (non-editable) install works from another folder: the package data (configs/) travels with it.

The editable install of the dev environment would hide a missing `package-data` entry, so this test builds the
project into a separate target folder with pip and runs training from an unrelated working directory with only
that folder on the path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_regular_install_trains_from_another_folder(tmp_path):
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=str(target), WANDB_MODE="disabled")
    where = subprocess.run([sys.executable, "-c", "import msol, configs; print(msol.__file__); print(configs.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout
    run_dir = elsewhere / "run"
    result = subprocess.run([str(target / "bin" / "msol-train"), "env=moving_bandits", "budget_scale=0.002",
                             f"run_dir={run_dir}", "logger.progress_bar=false"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "transfer/eval/return/mean" in summary
