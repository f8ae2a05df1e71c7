"""Helpers of the learning benchmarks: launch `python -m msol.train` runs as subprocesses, a few at a time,
resuming or skipping finished ones; write a benchmark's section into a docs page.

Learning benchmarks are long; they are restartable: a run directory with `summary.json` is read instead of
re-run, one with a checkpoint is resumed (`resume=<dir>`), so killing and re-starting a benchmark loses no work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TrainJob:
    """One `msol.train` run: its run directory and the Hydra overrides (without `run_dir`/`resume`)."""

    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    after: TrainJob | None = None  # a job that must finish first (e.g. the run this one's `init_from` names)

    @property
    def finished(self) -> bool:
        return (self.run_dir / "summary.json").exists()

    def start(self, nice: int = 0) -> subprocess.Popen:
        where = f"resume={self.run_dir}" if (self.run_dir / "checkpoints" / "latest.pt").exists() \
            else f"run_dir={self.run_dir}"
        args = [sys.executable, "-m", "msol.train", *self.overrides, where, "logger.progress_bar=false"]
        if nice:
            args = ["nice", "-n", str(nice), *args]
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir.parent / f"{self.run_dir.name}.log", "a") as log:  # the child keeps its own copy
            return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def run_all(jobs: list[TrainJob], parallel: int, nice: int = 0, poll_s: float = 5.0) -> list[TrainJob]:
    """Run the unfinished jobs, `parallel` at a time; return the jobs that failed (their logs say why)."""
    pending = [j for j in jobs if not j.finished]
    running: list[tuple[TrainJob, subprocess.Popen]] = []
    failed: list[TrainJob] = []
    while pending or running:
        for job in [j for j in pending if j.after in failed]:
            pending.remove(job)
            failed.append(job)
            print(f"SKIPPED (needs the failed {job.after.run_dir}): {job.run_dir}", flush=True)
        while len(running) < parallel:
            ready = [j for j in pending if j.after is None or j.after.finished]
            if not ready:
                break
            job = ready[0]
            pending.remove(job)
            running.append((job, job.start(nice)))
        for job, proc in list(running):
            if proc.poll() is not None:
                running.remove((job, proc))
                if proc.returncode != 0:
                    failed.append(job)
                    print(f"FAILED (exit {proc.returncode}): {job.run_dir}", flush=True)
                else:
                    print(f"done: {job.run_dir}", flush=True)
        time.sleep(poll_s)
    return failed


def read_run(run_dir: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A run's metrics rows (``msol.plot.read_metrics``: safe while the run is writing) and its summary, if any."""
    from msol.plot import read_metrics

    summary_path = run_dir / "summary.json"
    rows = read_metrics(run_dir) if (run_dir / "metrics.jsonl").exists() else []
    return rows, json.loads(summary_path.read_text()) if summary_path.exists() else None


def replace_section(path: Path, heading: str, body: str) -> None:
    """Put ``body`` (which starts with ``heading``) in place of that section of ``path``, or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if heading in text:
        head, _, rest = text.partition(heading)
        nxt = rest.find("\n## ")
        text = head + body + (rest[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text)
