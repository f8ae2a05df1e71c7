"""Weights & Biases as an optional, never-fatal metrics sink.

W&B is a dashboard, not the record: the run directory's ``metrics.jsonl`` is. So any W&B failure (no server,
no login, a crash of its service) degrades to local logging with one warning, and an online run that cannot reach
its server falls back to an offline run that ``wandb sync <run dir>/wandb/offline-run-*`` uploads later.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class WandbSink:
    """Forward metrics and images to a W&B run; silently inert if W&B is unavailable."""

    def __init__(
        self,
        run_dir: Path,
        *,
        project: str,
        mode: str,
        group: str | None,
        job_type: str,
        tags: list[str],
        config: dict[str, Any],
        name: str,
        run_id: str,
        init_timeout: float = 30.0,
    ) -> None:
        self._run = None
        self.warned = False
        try:
            import wandb
        except ImportError as exc:  # pragma: no cover - wandb is a hard dependency
            self._warn(f"wandb is not importable ({exc}); logging locally only")
            return
        self._wandb = wandb
        kwargs = {
            "project": project, "group": group, "job_type": job_type, "tags": tags, "config": config, "name": name,
            "id": run_id, "resume": "allow", "dir": str(run_dir), "reinit": "finish_previous",
            "settings": wandb.Settings(init_timeout=init_timeout, silent=True),
        }
        try:
            self._run = wandb.init(mode=mode, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any W&B failure must not stop training
            if mode != "online":
                self._warn(f"W&B ({mode}) failed to start ({type(exc).__name__}: {exc}); logging locally only")
                return
            self._warn(
                f"W&B server unreachable ({type(exc).__name__}); continuing with an OFFLINE W&B run in "
                f"{run_dir}/wandb — upload it later with `wandb sync`"
            )
            try:
                os.environ["WANDB_MODE"] = "offline"
                self._run = wandb.init(mode="offline", **kwargs)
            except Exception as exc2:  # noqa: BLE001
                self._warn(f"offline W&B failed too ({exc2}); logging locally only")
                self._run = None

    @property
    def active(self) -> bool:
        return self._run is not None

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self._run is None:
            return
        try:
            self._run.log(dict(metrics), step=step)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"W&B logging failed ({exc}); logging locally only from now on")
            self._run = None

    def log_image(self, step: int, name: str, path: Path) -> None:
        if self._run is None:
            return
        try:
            self._run.log({name: self._wandb.Image(str(path))}, step=step)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"W&B image logging failed ({exc})")

    def summary(self, values: Mapping[str, Any]) -> None:
        if self._run is None:
            return
        for key, value in values.items():
            self._run.summary[key] = value

    def finish(self, exit_code: int = 0) -> None:
        if self._run is None:
            return
        try:
            self._run.finish(exit_code=exit_code)
        except Exception as exc:  # noqa: BLE001
            self._warn(f"W&B finish failed ({exc})")
        self._run = None

    def _warn(self, message: str) -> None:
        if not self.warned:
            print(f"[msol] warning: {message}", file=sys.stderr, flush=True)
            self.warned = True
