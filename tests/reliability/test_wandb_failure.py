"""W&B failure: ``logger.mode=online`` with no reachable server trains to the end with local logging, says so once,
and leaves an offline W&B run in the run directory for ``wandb sync``."""

from __future__ import annotations

import json

from cli_runs import TINY, cli_env, metric_rows, run_cli


def test_online_without_server_trains_with_local_logging_and_warns_once(tmp_path):
    run_dir = tmp_path / "run"
    env = cli_env(WANDB_API_KEY="x" * 40, WANDB_BASE_URL="http://127.0.0.1:9",  # nothing listens on port 9
                  WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wandb_config"),
                  WANDB_CACHE_DIR=str(tmp_path / "wandb_cache"))
    env.pop("WANDB_MODE")
    result = run_cli(*TINY, "budget_scale=0.002", "logger=wandb", "logger.mode=online", "logger.init_timeout=5",
                     "logger.progress_bar=false", f"run_dir={run_dir}", cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("[msol] warning") == 1, result.stderr[-3000:]
    assert "unreachable" in result.stderr and "wandb sync" in result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["objective"] == summary["objective"]  # finished, with a real number
    phases = {row["phase"] for row in metric_rows(run_dir)}
    assert {"options", "transfer", "transfer/eval"} <= phases
    assert list((run_dir / "wandb").glob("offline-run-*")), "no offline W&B run to sync later"
