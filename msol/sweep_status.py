"""Where a sweep stands: ``python -m msol.plot <sweep dir> --status``.

Per run directory: done, running (its lock is held), resumable (at how many frames per task, from its checkpoint),
started without a checkpoint, or not started (a job of the sweep's ``multirun.yaml`` with no directory yet); and the estimated CPU
time left, from each run's own speed so far (frames per task per second of its process, evaluations included).
Re-running the sweep's command continues it (``msol.train``: finished jobs are skipped, checkpointed ones resumed).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from msol.common.population import population_dirs
from msol.common.run import lock_is_held

DEFAULT_SUBDIR = "${env.name}/${algo.name}/s${seed}"


@dataclass
class RunStatus:
    run_dir: Path
    algo: str
    state: str                   # done | running | resumable | started | not started
    frames_done: int | None      # frames per task (the checkpoint's for a resumable run)
    frames_total: int | None
    seconds: float | None        # wall time of its process so far (the whole population's, for a member)
    members: int                 # size of the population it trains in (its process serves them all)
    speed_of: str | None = None  # the algorithm whose speed estimates it before it has its own: for an
                                 # ``algo.also_transfer`` twin, the run whose option learning it transfers from

    @property
    def rate(self) -> float | None:
        """Frames per task per second of its process so far."""
        if self.frames_done and self.seconds:
            return self.frames_done / self.seconds
        return None


def phase_frames(cfg: DictConfig) -> list[int] | None:
    """Frames per task of each of the run's phases (the budgets of ``msol.common.protocol.build_phases``), None for
    algorithms that do not run the protocol's phases."""
    algo, scale = cfg.algo, float(cfg.get("budget_scale", 1.0))
    phases = OmegaConf.select(cfg, "algo.phases", default=None)
    if phases is None:
        return None
    keys = {"options": "option_frames_per_task", "transfer": "transfer_frames_per_task",
            "scratch": "transfer_frames_per_task"}
    return [max(1, int(float(algo[keys[p]]) * scale)) for p in phases if p in keys]


def run_status(run_dir: Path) -> RunStatus:
    from msol.common.checkpoint import load_checked

    cfg = OmegaConf.load(run_dir / "config.yaml")
    frames = phase_frames(cfg)
    total = None if frames is None else sum(frames)
    members = len(population_dirs(run_dir))
    status = RunStatus(run_dir, str(cfg.algo.name), "started", None, total, None, members)
    if (run_dir / "summary.json").exists():
        summary = json.loads((run_dir / "summary.json").read_text())
        status.state, status.frames_done, status.seconds = "done", total, summary.get("wall_time_s")
        return status
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.exists():
        state = load_checked(latest)
        status.state = "running" if lock_is_held(run_dir) else "resumable"
        if frames is not None:
            status.frames_done = sum(frames[:int(state["phase_index"])]) + int(state["frames"])
        status.seconds = float(state.get("wall_time_s", 0.0)) or None
    return status


def sweep_status(sweep: Path) -> list[RunStatus]:
    """Every run directory under ``sweep`` and every job that has none yet of each ``multirun.yaml`` under it — so a
    directory holding several sweeps (say one per map, one per core) reports all of them."""
    from msol.plot import find_run_dirs

    found = [run_status(d) for d in find_run_dirs(sweep)]
    known = {s.run_dir.resolve() for s in found}
    planned = [run for path in sorted(Path(sweep).rglob("multirun.yaml")) for run in planned_runs(path.parent)]
    return found + [run for run in planned if run.run_dir.resolve() not in known]


def planned_runs(sweep: Path) -> list[RunStatus]:
    """Every run the sweep's command launches, as not started; [] without a ``multirun.yaml`` or with a custom
    ``hydra.sweep.subdir``. An ``algo.also_transfer`` twin starts from its source's finished option learning, so
    only its transfer is left to run, at its source's speed."""
    path = Path(sweep) / "multirun.yaml"
    if not path.is_file():
        return []
    saved = OmegaConf.load(path)
    if OmegaConf.to_container(saved.hydra.sweep, resolve=False).get("subdir") != DEFAULT_SUBDIR:
        return []
    from hydra import compose, initialize_config_module
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(saved, "hydra.sweeper.params", default={}) or {}
    # The sweeper's params first: an override of the same key on the command line replaces them (as in Hydra).
    arguments = [*(f"{k}={v}" for k, v in params.items()), *saved.hydra.overrides.task]
    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        axes[key] = list(override.sweep_string_iterator()) if override.is_sweep_override() else \
            [override.get_value_element_as_str()]
    runs = []
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        for values in itertools.product(*axes.values()):
            cfg = compose("train", overrides=[f"{k}={v}" for k, v in zip(axes, values, strict=True)])
            population, source, frames = int(cfg.get("population", 1)), str(cfg.algo.name), phase_frames(cfg)
            total = None if frames is None else sum(frames)
            twins = [str(n) for n in (OmegaConf.select(cfg, "algo.also_transfer") or [])]
            for name, k in itertools.product([source, *twins], range(population)):
                run_dir = Path(sweep) / str(cfg.env.name) / name / f"s{int(cfg.seed) + k}"
                inherited = sum(frames[:-1]) if name != source and frames else 0
                runs.append(RunStatus(run_dir, name, "not started", inherited, total, None, population,
                                      speed_of=source if name != source else None))
    return runs


def status_table(rows: list[RunStatus], sweep: Path) -> str:
    """Markdown: one line per run, then the CPU time left (each population counted once)."""
    rates: dict[str, list[float]] = {}
    for row in rows:
        if row.rate and row.speed_of is None:
            rates.setdefault(row.algo, []).append(row.rate)
    lines = [f"Status of {sweep}", "", "| run | state | frames per task | CPU time so far | est. CPU time left |",
             "|---|---|---|---|---|"]
    left_total, unknown = 0.0, 0
    for row in sorted(rows, key=lambda r: str(r.run_dir)):
        left = None
        if row.state == "done":
            left = 0.0
        elif row.frames_total is not None:
            like = row.speed_of or row.algo
            rate = row.rate or (sum(rates[like]) / len(rates[like]) if like in rates else None)
            if rate:
                left = (row.frames_total - (row.frames_done or 0)) / rate
        if left is None:
            unknown += 1
        else:
            left_total += left / max(row.members, 1)  # a population's members share one process
        frames = "?" if row.frames_done is None else f"{row.frames_done:,}"
        total = "?" if row.frames_total is None else f"{row.frames_total:,}"
        state = f"{row.state} at {frames}" if row.state in ("running", "resumable") else row.state
        if row.state == "not started" and row.speed_of:
            state += f" (transfers from {row.speed_of}'s option learning)"
        lines.append(f"| {row.run_dir.relative_to(sweep)} | {state} | {frames} / {total} | {_hours(row.seconds)} | "
                     f"{_hours(left)} |")
    note = f" ({unknown} runs without an estimate)" if unknown else ""
    summary = (f"Estimated CPU time left: {_hours(left_total)}{note}, one process per population, on a core like "
               "the one that ran them. Continue with the sweep's own command (finished runs are skipped).")
    lines += ["", summary]
    return "\n".join(lines)


def _hours(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"
