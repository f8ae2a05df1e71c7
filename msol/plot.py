"""Aggregate a sweep into the paper-style figure and table: ``python -m msol.plot <sweep dir>``.

A sweep is any directory tree holding run directories (``config.yaml`` + ``metrics.jsonl``, see ``msol.common.run``),
e.g. the ``hydra.sweep.dir`` of ``python -m msol.train -m experiment=taxi``. For every env of the sweep this draws
the evaluation return against frames per task of the phase the paper plots (transfer; scratch for flat learners),
one line per algorithm: the mean over seeds with a 95% bootstrap band (seeds resampled with replacement), and the
optimal return (``env.optimal_return``) dashed. The table gives each algorithm's final return (mean [95% CI] of the
last evaluation row of each seed) and the frames per task its mean curve needs to reach 90% of the optimum.

Writes ``returns.png``, ``results.md`` and ``results.json`` into the sweep dir (or ``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from omegaconf import OmegaConf

from msol.common.run import dumps_strict

# The phase each kind of learner is judged on, in order of preference: transfer after option learning, a flat
# learner's only phase, then the single "eval" phase of single-task baselines.
PLOT_PHASES = ("transfer/eval", "scratch/eval", "eval")
METRIC = "return/mean"
FIGURE_NAME, TABLE_NAME, JSON_NAME = "returns.png", "results.md", "results.json"
ARCHIVED_METRICS = "metrics.jsonl.gz"
# What a finished run keeps in the repository (docs/results/<experiment>-<budget>/): enough for figures and tables.
ARCHIVED_FILES = ("config.yaml", "summary.json", "population.json")
TABLE_HEADER = ("| algorithm | seeds | final return, mean [95% CI] | frames to 90% of optimum (mean curve) "
                "| seeds reaching 90% |")

# Paper names and fixed colours, so an algorithm looks the same in every figure of docs/results.md.
ALGO_STYLE: dict[str, tuple[str, str]] = {
    "msol": ("MSOL", "tab:red"),
    "msol_frozen": ("MSOL(frozen)", "tab:orange"),
    "distral": ("DISTRAL", "tab:blue"),
    "distral_action": ("DISTRAL(+action)", "tab:cyan"),
    "mlsh": ("MLSH", "tab:green"),
    "option_critic": ("Option-Critic", "tab:purple"),
    "hard_options": ("hard options", "tab:brown"),
    "hard_options_primitives": ("hard options + primitives", "tab:pink"),
    "a2c": ("A2C (scratch)", "tab:gray"),
    "ppo": ("PPO (scratch)", "tab:olive"),
}


def threshold_for(optimal: float) -> float:
    """'90% of the optimum', also meaningful for a negative optimum: within 10% of |optimum| below it."""
    return optimal - 0.1 * abs(optimal)


@dataclass
class RunCurve:
    """The evaluation curve of one run, with the config facts the aggregation groups by."""

    run_dir: Path
    env: str
    algo: str
    seed: int
    phase: str
    frames: np.ndarray     # frames per task within the phase
    values: np.ndarray     # the metric at those frames
    finished: bool         # summary.json exists
    optimal: float | None
    budget: str | None
    budget_scale: float
    experiment: dict[str, Any] = field(default_factory=dict)


@dataclass
class AlgoResult:
    """One algorithm on one env, aggregated over seeds."""

    algo: str
    seeds: list[int]
    run_dirs: list[Path]
    frames: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    final: np.ndarray                  # last evaluation value of each seed
    final_mean: float
    final_ci: tuple[float, float]
    frames_to_threshold: float | None  # first frames per task where the mean curve reaches the threshold
    seeds_reaching: int | None         # seeds whose own curve reaches it (None without an optimum)


@dataclass
class EnvResult:
    env: str
    phase: str
    optimal: float | None
    budget: str | None
    budget_scale: float
    experiment: dict[str, Any]
    algos: dict[str, AlgoResult]

    @property
    def threshold(self) -> float | None:
        return None if self.optimal is None else threshold_for(self.optimal)


# ---------------------------------------------------------------------------------------------- reading runs
def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under ``root`` (itself included) that holds both ``config.yaml`` and ``metrics.jsonl`` (or,
    archived under docs/results, ``metrics.jsonl.gz``)."""
    found = {p.parent for pattern in ("metrics.jsonl", ARCHIVED_METRICS) for p in Path(root).rglob(pattern)}
    return sorted(d for d in found if (d / "config.yaml").is_file())


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    plain = run_dir / "metrics.jsonl"
    text = plain.read_text() if plain.exists() else gzip.decompress((run_dir / ARCHIVED_METRICS).read_bytes()).decode()
    rows = []
    for line in text.splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a row being written while we read: only ever the last one
                break
    return rows


def load_curve(run_dir: Path, metric: str = METRIC, phase: str | None = None) -> RunCurve | None:
    """The curve ``run_dir`` contributes, or None when it has no evaluation row of that phase (yet)."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    rows = read_metrics(run_dir)
    phases = {r.get("phase") for r in rows}
    chosen = phase if phase is not None else next((p for p in PLOT_PHASES if p in phases), None)
    rows = [r for r in rows if r.get("phase") == chosen and metric in r]
    if not rows:
        return None
    frames = np.array([r.get("frames_per_task", r["step"]) for r in rows], dtype=np.float64)
    values = np.array([r[metric] for r in rows], dtype=np.float64)
    optimal = OmegaConf.select(cfg, "env.optimal_return", default=None)
    experiment = OmegaConf.select(cfg, "experiment", default=None)
    return RunCurve(
        run_dir=run_dir, env=str(cfg.env.name), algo=str(cfg.algo.name), seed=int(cfg.seed), phase=str(chosen),
        frames=frames, values=values, finished=(run_dir / "summary.json").is_file(),
        optimal=None if optimal is None else float(optimal),
        budget=OmegaConf.select(cfg, "budget.name", default=None),
        budget_scale=float(OmegaConf.select(cfg, "budget_scale", default=1.0)),
        experiment=OmegaConf.to_container(experiment, resolve=True) if experiment is not None else {},
    )


# ---------------------------------------------------------------------------------------------- statistics
def bootstrap_mean_ci(values: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of the mean over axis 0 (seeds); one seed gives a zero-width band.

    ``values``: (seeds, ...) -> (lo, hi) with the trailing shape. A fixed RNG seed keeps figures reproducible.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[0]
    if n < 1:
        raise ValueError("bootstrap_mean_ci: need at least one seed")
    if resamples < 1:
        raise ValueError(f"resamples={resamples!r}: must be an integer >= 1, e.g. 2000")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r}: must be in (0, 1), e.g. 0.95")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(n, size=(resamples, n))].mean(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    return np.percentile(means, tail, axis=0), np.percentile(means, 100.0 - tail, axis=0)


def first_crossing(frames: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    """The first frame count at which ``values`` reaches ``threshold``, None if it never does."""
    hit = np.flatnonzero(np.asarray(values) >= threshold)
    return float(frames[hit[0]]) if hit.size else None


def align(curves: Sequence[RunCurve]) -> tuple[np.ndarray, np.ndarray]:
    """Seeds' curves on one frame grid: their own when they share it, else interpolated on the common range."""
    grids = [c.frames for c in curves]
    if all(g.shape == grids[0].shape and np.array_equal(g, grids[0]) for g in grids):
        return grids[0], np.stack([c.values for c in curves])
    start, stop = max(g[0] for g in grids), min(g[-1] for g in grids)
    grid = np.unique(np.concatenate(grids))
    grid = grid[(grid >= start) & (grid <= stop)]
    return grid, np.stack([np.interp(grid, c.frames, c.values) for c in curves])


def aggregate_algo(curves: Sequence[RunCurve], optimal: float | None, confidence: float, resamples: int
                   ) -> AlgoResult:
    curves = sorted(curves, key=lambda c: c.seed)
    frames, stacked = align(curves)
    lo, hi = bootstrap_mean_ci(stacked, confidence, resamples)
    final = np.array([c.values[-1] for c in curves])
    final_lo, final_hi = bootstrap_mean_ci(final, confidence, resamples)
    mean = stacked.mean(axis=0)
    reach, reaching = None, None
    if optimal is not None:
        thr = threshold_for(optimal)
        reach = first_crossing(frames, mean, thr)
        reaching = sum(first_crossing(c.frames, c.values, thr) is not None for c in curves)
    return AlgoResult(
        algo=curves[0].algo, seeds=[c.seed for c in curves], run_dirs=[c.run_dir for c in curves], frames=frames,
        mean=mean, lo=lo, hi=hi, final=final, final_mean=float(final.mean()),
        final_ci=(float(final_lo), float(final_hi)), frames_to_threshold=reach, seeds_reaching=reaching,
    )


def _order_key(name: str, order: Sequence[str]) -> tuple[int, str]:
    return (list(order).index(name) if name in order else len(order), name)


def _algo_key(name: str) -> tuple[int, str]:
    return _order_key(name, list(ALGO_STYLE))


def _phase_key(name: str) -> tuple[int, str]:
    return _order_key(name, PLOT_PHASES)


def aggregate(curves: Sequence[RunCurve], confidence: float = 0.95, resamples: int = 2000
              ) -> dict[str, EnvResult]:
    """Group curves by env and algorithm; refuse mixtures that would silently average different experiments."""
    by_env: dict[str, list[RunCurve]] = {}
    for curve in curves:
        by_env.setdefault(curve.env, []).append(curve)
    results = {}
    for env, env_curves in sorted(by_env.items()):
        seen: dict[tuple[str, int], Path] = {}
        for c in env_curves:
            if (c.algo, c.seed) in seen:
                raise ValueError(
                    f"two runs of env={env} algo={c.algo} seed={c.seed}: {seen[c.algo, c.seed]} and {c.run_dir}; "
                    "point msol.plot at a single sweep directory")
            seen[c.algo, c.seed] = c.run_dir
        for attr in ("budget_scale", "optimal"):
            found = {getattr(c, attr) for c in env_curves}
            if len(found) > 1:
                raise ValueError(f"env={env}: runs disagree on {attr} ({sorted(found, key=str)}); "
                                 "point msol.plot at a single sweep directory")
        first = env_curves[0]
        by_algo: dict[str, list[RunCurve]] = {}
        for c in env_curves:
            by_algo.setdefault(c.algo, []).append(c)
        algos = {name: aggregate_algo(by_algo[name], first.optimal, confidence, resamples)
                 for name in sorted(by_algo, key=_algo_key)}
        phases = sorted({c.phase for c in env_curves}, key=_phase_key)
        results[env] = EnvResult(env=env, phase=" / ".join(phases), optimal=first.optimal, budget=first.budget,
                                 budget_scale=first.budget_scale, experiment=first.experiment, algos=algos)
    return results


# ---------------------------------------------------------------------------------------------- output
def _frames(x: float | None) -> str:
    if x is None:
        return "not reached"
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.0f}"


def _num(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else str(x)


def sweep_command(sweep: Path) -> str | None:
    """The command that launched a Hydra sweep, rebuilt from its ``multirun.yaml`` (None if there is none)."""
    path = Path(sweep) / "multirun.yaml"
    if not path.is_file():
        return None
    overrides = OmegaConf.load(path).hydra.overrides
    args = [a for a in overrides.hydra if a != "hydra.mode=MULTIRUN"] + list(overrides.task)
    return " ".join(["python -m msol.train -m", *args])


def finish_dates(results: dict[str, EnvResult]) -> str:
    """UTC date range at which the aggregated runs wrote their summary (or last metrics row)."""
    stamps = []
    for res in results.values():
        for a in res.algos.values():
            for d in a.run_dirs:
                summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
                if "finished_at" in summary:
                    stamps.append(datetime.strptime(summary["finished_at"], "%Y-%m-%d %H:%M:%S"))
                    continue
                marker = d / "summary.json" if summary else d / "metrics.jsonl"
                stamps.append(datetime.fromtimestamp(marker.stat().st_mtime, tz=timezone.utc).replace(tzinfo=None))
    first, last = min(stamps).strftime("%Y-%m-%d %H:%M"), max(stamps).strftime("%Y-%m-%d %H:%M")
    return f"{first} – {last} UTC" if first != last else f"{first} UTC"


def markdown(results: dict[str, EnvResult], sweep: Path, skipped: Sequence[str] = ()) -> str:
    """The results table of every env, with the facts needed to reproduce and judge it."""
    lines = [f"Sweep `{sweep}`; runs finished {finish_dates(results)}."]
    command = sweep_command(sweep)
    if command:
        lines.append(f"Command: `{command}`.")
    for res in results.values():
        exp = res.experiment
        title = f"### {res.env}" + (f" ({exp['paper']})" if exp.get("paper") else "")
        lines += ["", title, ""]
        if exp.get("claim"):
            lines.append(f"Paper's claim: {exp['claim']}.")
        frames = max(float(a.frames[-1]) for a in res.algos.values())
        lines.append(f"Experiment `{exp.get('name', '-')}`, budget `{res.budget or '-'}` "
                     f"(budget_scale {res.budget_scale:g}), phase `{res.phase}`: {_frames(frames)} frames per task.")
        if res.optimal is not None:
            lines.append(f"Optimal return {_num(res.optimal)} (dashed); 90% threshold {_num(res.threshold)}.")
        lines += ["", TABLE_HEADER, "|---|---:|---:|---:|---:|"]
        for a in res.algos.values():
            name = ALGO_STYLE.get(a.algo, (a.algo, ""))[0]
            seeds = ",".join(str(s) for s in a.seeds)
            final = f"{_num(a.final_mean)} [{_num(a.final_ci[0])}, {_num(a.final_ci[1])}]"
            if res.optimal is None:
                reach, reaching = "n/a", "n/a"
            else:
                reach, reaching = _frames(a.frames_to_threshold), f"{a.seeds_reaching}/{len(a.seeds)}"
            lines.append(f"| {name} (`{a.algo}`) | {len(a.seeds)} ({seeds}) | {final} | {reach} | {reaching} |")
    if skipped:
        lines += ["", f"Left out ({len(skipped)}): " + "; ".join(skipped)]
    return "\n".join(lines) + "\n"


def make_figure(results: dict[str, EnvResult], confidence: float = 0.95) -> Figure:
    """One panel per env: mean curve and bootstrap band per algorithm, the optimum dashed."""
    n = len(results)
    fig = Figure(figsize=(5.2 * n, 3.9), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, res in zip(axes, results.values()):
        for a in res.algos.values():
            label, colour = ALGO_STYLE.get(a.algo, (a.algo, None))
            (line,) = ax.plot(a.frames, a.mean, label=f"{label} (n={len(a.seeds)})", color=colour, lw=1.6)
            ax.fill_between(a.frames, a.lo, a.hi, color=line.get_color(), alpha=0.2, lw=0)
        if res.optimal is not None:
            ax.axhline(res.optimal, color="black", ls="--", lw=1.0, label="optimal")
        exp = res.experiment
        ax.set_title(f"{res.env}" + (f" — {exp['paper']}" if exp.get("paper") else ""), fontsize=10)
        ax.set_xlabel(f"frames per task ({res.phase.replace('/eval', '')})")
        ax.set_ylabel(f"eval return (mean, {confidence:.0%} bootstrap CI)")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    return fig


def _jsonable(results: dict[str, EnvResult]) -> dict[str, Any]:
    out = {}
    for env, res in results.items():
        out[env] = {
            "phase": res.phase, "optimal_return": res.optimal, "threshold": res.threshold, "budget": res.budget,
            "budget_scale": res.budget_scale, "experiment": res.experiment,
            "algos": {name: {
                "seeds": a.seeds, "run_dirs": [str(d) for d in a.run_dirs], "final": a.final.tolist(),
                "final_mean": a.final_mean, "final_ci": list(a.final_ci),
                "frames_to_threshold": a.frames_to_threshold, "seeds_reaching": a.seeds_reaching,
                "frames": a.frames.tolist(), "mean": a.mean.tolist(), "lo": a.lo.tolist(), "hi": a.hi.tolist(),
            } for name, a in res.algos.items()},
        }
    return out


@dataclass
class Report:
    figure: Path
    table: Path
    json: Path
    markdown: str
    results: dict[str, EnvResult]


def plot_sweep(sweep: Path, out: Path | None = None, *, metric: str = METRIC, phase: str | None = None,
               include_unfinished: bool = False, confidence: float = 0.95, resamples: int = 2000) -> Report:
    """Read every run under ``sweep``, write the figure, the markdown table and a JSON dump; return them."""
    sweep = Path(sweep)
    if not sweep.is_dir():
        raise ValueError(f"sweep dir {str(sweep)!r} does not exist or is not a directory")
    run_dirs = find_run_dirs(sweep)
    if not run_dirs:
        raise ValueError(f"no run directories (config.yaml + metrics.jsonl) under {sweep}")
    curves, skipped = [], []
    for run_dir in run_dirs:
        curve = load_curve(run_dir, metric, phase)
        rel = str(run_dir.relative_to(sweep)) if run_dir != sweep else "."
        if curve is None:
            skipped.append(f"`{rel}` (no {phase or ' / '.join(PLOT_PHASES)} rows with {metric} yet)")
        elif not curve.finished and not include_unfinished:
            skipped.append(f"`{rel}` (unfinished: no summary.json)")
        else:
            curves.append(curve)
    if not curves:
        raise ValueError(f"no run under {sweep} has finished evaluation rows to plot; left out: {'; '.join(skipped)}")
    results = aggregate(curves, confidence, resamples)
    out = Path(out) if out is not None else sweep
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(results, sweep, skipped)
    figure = out / FIGURE_NAME
    make_figure(results, confidence).savefig(figure, dpi=120)
    (out / TABLE_NAME).write_text(f"![returns]({FIGURE_NAME})\n\n{text}")
    (out / JSON_NAME).write_text(dumps_strict(_jsonable(results), indent=1))
    return Report(figure, out / TABLE_NAME, out / JSON_NAME, text, results)


def archive_runs(sweep: Path, out: Path, include_unfinished: bool = False) -> list[Path]:
    """Copy what the figures and tables need of every finished run under ``sweep`` (config, summary, population
    file, metrics gzipped; no checkpoints, no W&B files) to the same relative place under ``out``; with
    ``include_unfinished`` also the runs still going (their metrics so far, no summary: partial results); returns the
    archived run directories. A run already archived is replaced. The sweep's ``multirun.yaml`` (its command, which
    ``msol.plot`` prints) goes along only into an empty ``out``: an archive that gathers several sweeps has no single
    command (docs/results.md names each)."""
    archived = []
    Path(out).mkdir(parents=True, exist_ok=True)
    if (Path(sweep) / "multirun.yaml").is_file() and not find_run_dirs(out):
        shutil.copy2(Path(sweep) / "multirun.yaml", Path(out) / "multirun.yaml")
    for run_dir in find_run_dirs(sweep):
        finished = (run_dir / "summary.json").is_file()
        if not (finished or include_unfinished) or run_dir.resolve().is_relative_to(Path(out).resolve()):
            continue
        target = Path(out) / run_dir.relative_to(sweep)
        target.mkdir(parents=True, exist_ok=True)
        for name in ARCHIVED_FILES:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, target / name)  # keeps the finish time msol.plot reports
        metrics = "\n".join(json.dumps(row) for row in read_metrics(run_dir)) + "\n"
        (target / ARCHIVED_METRICS).write_bytes(gzip.compress(metrics.encode(), mtime=0))
        archived.append(target)
    return archived


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="msol-plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="sweep directory (searched recursively for run directories)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: the sweep dir)")
    parser.add_argument("--metric", default=METRIC, help=f"metrics.jsonl key to plot (default {METRIC})")
    parser.add_argument("--phase", default=None,
                        help=f"metrics phase to plot (default: the first present of {', '.join(PLOT_PHASES)})")
    parser.add_argument("--include-unfinished", action="store_true", help="also plot runs without summary.json")
    parser.add_argument("--confidence", type=float, default=0.95, help="bootstrap confidence level (default 0.95)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--status", action="store_true",
                        help="print where the sweep stands (done / resumable / not started, CPU time left) and exit")
    parser.add_argument("--archive", type=Path, default=None, metavar="DIR",
                        help="copy the finished runs' config, summary and gzipped metrics (no checkpoints) to DIR, "
                             "e.g. docs/results/<experiment>-paper (with --include-unfinished also the metrics of "
                             "runs still going), then plot as usual")
    args = parser.parse_args(argv)
    if args.archive is not None:
        if not args.sweep.is_dir():
            print(f"msol.plot: error: {args.sweep} is not a folder", file=sys.stderr)
            sys.exit(2)
        archived = archive_runs(args.sweep, args.archive, include_unfinished=args.include_unfinished)
        size = sum(p.stat().st_size for d in archived for p in d.iterdir())
        unfinished = sum(not (d / "summary.json").exists() for d in archived)
        print(f"archived {len(archived)} runs ({unfinished} unfinished) to {args.archive} ({size / 1024:.0f} KiB)")
    if args.status:
        from msol.sweep_status import status_table, sweep_status

        if not args.sweep.is_dir():
            print(f"msol.plot: error: {args.sweep} is not a folder", file=sys.stderr)
            sys.exit(2)
        print(status_table(sweep_status(args.sweep), args.sweep))
        return
    try:
        report = plot_sweep(args.sweep, args.out, metric=args.metric, phase=args.phase,
                            include_unfinished=args.include_unfinished, confidence=args.confidence,
                            resamples=args.resamples)
    except ValueError as exc:
        print(f"msol.plot: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(report.markdown)
    print(f"wrote {report.figure}, {report.table}, {report.json}")


if __name__ == "__main__":
    main()
