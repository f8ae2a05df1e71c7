"""Run the ESS experiments (configs/experiment/ess_*.yaml) one job at a time, then turn them into docs/ess figures.

    python -m msol.baselines.ess.experiments run ess_defender_grid [--seeds 0 1] [override ...]
    python -m msol.baselines.ess.experiments report

``run`` expands the experiment's ``hydra.sweeper.params`` into jobs and trains each in this process through
``msol.train.train`` — one training process, jobs in sequence — into ``runs/ess/<experiment>/<algo>/K.._phi.._s..``.
A job whose ``summary.json`` exists is skipped and one with a checkpoint is resumed, so an interrupted campaign
continues where it stopped. ``report`` reads every finished job, writes the PNG figures to ``docs/ess/`` and prints
the markdown tables of docs/ess.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

EXPERIMENTS = ("ess_defender_grid", "ess_supervised", "ess_attacker", "ess_multiagent")
DEFAULT_OUT = Path("runs/ess")
DEFAULT_DOCS = Path("docs/ess")


def _compose(overrides: list[str], hydra_config: bool = False):
    with initialize_config_module("msol.configs", version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=hydra_config)


def jobs(experiment: str, seeds: list[int], extra: list[str]) -> Iterator[list[str]]:
    """The override lists of an experiment's sweep (its ``hydra.sweeper.params``), one per job."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment={experiment!r}; valid: {', '.join(EXPERIMENTS)}")
    cfg = _compose([f"experiment={experiment}"], hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=False) or {}
    axes = [[f"{key}={value.strip()}" for value in str(values).split(",")] for key, values in params.items()]
    for seed in seeds:
        for combo in itertools.product(*axes):
            yield [f"experiment={experiment}", *combo, f"seed={seed}", *extra]


def job_dir(out: Path, experiment: str, cfg) -> Path:
    kwargs = cfg.env.kwargs
    return out / experiment / str(cfg.algo.name) / f"K{kwargs.K}_phi{kwargs.potential}_s{cfg.seed}"


def run(experiment: str, seeds: list[int], extra: list[str], out: Path) -> None:
    from msol.train import train

    os.environ.setdefault("WANDB_MODE", "disabled")
    started = time.time()
    for overrides in jobs(experiment, seeds, extra):
        cfg = _compose(overrides)
        run_dir = job_dir(out, experiment, cfg)
        if (run_dir / "summary.json").exists():
            print(f"skip (done): {run_dir}", flush=True)
            continue
        if (run_dir / "checkpoints" / "latest.pt").exists():
            cfg = _compose([*overrides, f"resume={run_dir}"])
        job_start = time.time()
        summary = train(cfg, run_dir=run_dir)
        print(f"{run_dir}: objective={summary['objective']:.3f} in {time.time() - job_start:.0f}s "
              f"(campaign {time.time() - started:.0f}s)", flush=True)


# ------------------------------------------------------------------------------------------------ report
def load(out: Path, experiment: str) -> list[dict[str, Any]]:
    """Every finished job of ``experiment``: its resolved config keys and summary."""
    rows = []
    for summary_path in sorted((out / experiment).glob("*/*/summary.json")):
        cfg = OmegaConf.load(summary_path.parent / "config.yaml")
        summary = json.loads(summary_path.read_text())
        rows.append({"algo": str(cfg.algo.name), "K": int(cfg.env.kwargs.K),
                     "potential": float(cfg.env.kwargs.potential), "seed": int(cfg.seed),
                     "frames_budget": round(cfg.algo.total_frames * cfg.budget_scale),
                     "attacker": str(cfg.env.kwargs.get("attacker", "")), **summary})
    return rows


def mean_over_seeds(rows: list[dict[str, Any]], key: str, *group: str) -> dict[tuple, float]:
    acc: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        if key in row and row[key] is not None:
            acc[tuple(row[g] for g in group)].append(float(row[key]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def _fmt(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _markdown(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_lines(ax, series: dict[str, dict[int, float]], title: str, ylabel: str) -> None:
    for label, points in series.items():
        ks = sorted(points)
        ax.plot(ks, [points[k] for k in ks], marker="o", label=label)
    ax.set(title=title, xlabel="K (levels)", ylabel=ylabel)
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def report_defender_grid(rows: list[dict[str, Any]], docs: Path, plt) -> str:
    algos = [a for a in ("sb3_ppo", "sb3_a2c", "sb3_dqn") if any(r["algo"] == a for r in rows)]
    win = mean_over_seeds(rows, "win_rate", "algo", "K", "potential")
    opt = mean_over_seeds(rows, "optimal_move_fraction", "algo", "K", "potential")
    pots = sorted({r["potential"] for r in rows})
    ks = sorted({r["K"] for r in rows})
    fig, axes = plt.subplots(1, len(algos), figsize=(4.2 * len(algos), 3.6), squeeze=False)
    for ax, algo in zip(axes[0], algos):
        _plot_lines(ax, {f"φ={p}": {k: win[(algo, k, p)] for k in ks if (algo, k, p) in win} for p in pots},
                    algo.removeprefix("sb3_").upper(), "defender win rate")
    _save(fig, docs / "defender_grid.png")
    body = [[algo, str(k), *(f"{_fmt(win.get((algo, k, p)))} ({_fmt(opt.get((algo, k, p)))})" for p in pots)]
            for algo in algos for k in ks]
    return _markdown(["algo", "K", *(f"φ={p}" for p in pots)], body)


def report_supervised(rows: list[dict[str, Any]], docs: Path, plt) -> str:
    ks = sorted({r["K"] for r in rows})
    keys = [("optimal_move_fraction", "correct moves (ties excluded)"), ("win_rate", "win rate"),
            ("fatal_mistakes_per_game", "fatal mistakes per game")]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.6))
    for ax, (key, title) in zip(axes, keys):
        series = {side: mean_over_seeds(rows, f"{side}/{key}", "K") for side in ("rl", "supervised")}
        _plot_lines(ax, {side: {k[0]: v for k, v in s.items()} for side, s in series.items()}, title, title)
        if key.startswith("fatal"):
            ax.set_ylim(auto=True)
    biggest = max(ks)
    for side in ("rl", "supervised"):
        curve = next((r[f"{side}/accuracy_by_distance"] for r in rows if r["K"] == biggest), [])
        axes[3].plot(range(1, len(curve) + 1), curve, marker="o", label=side)
    axes[3].set(title=f"K={biggest}: accuracy by distance to the end", xlabel="moves to the end",
                ylabel="correct moves")
    axes[3].legend(fontsize=8)
    axes[3].grid(alpha=0.3)
    _save(fig, docs / "rl_vs_supervised.png")
    columns = {"correct moves RL": "rl/optimal_move_fraction", "correct moves sup.": "supervised/optimal_move_fraction",
               "win rate RL": "rl/win_rate", "win rate sup.": "supervised/win_rate",
               "fatal/game RL": "rl/fatal_mistakes_per_game", "fatal/game sup.": "supervised/fatal_mistakes_per_game",
               "sup. held-out acc.": "supervised_fit/validation_accuracy"}
    means = {key: mean_over_seeds(rows, key, "K") for key in columns.values()}
    body = [[str(k), *(_fmt(means[key].get((k,))) for key in columns.values())] for k in ks]
    return _markdown(["K", *columns], body)


def report_attacker(rows: list[dict[str, Any]], docs: Path, plt) -> str:
    algos = [a for a in ("sb3_ppo", "sb3_a2c", "sb3_dqn") if any(r["algo"] == a for r in rows)]
    pots = sorted({r["potential"] for r in rows})
    ks = sorted({r["K"] for r in rows})
    win = mean_over_seeds(rows, "win_rate", "algo", "K", "potential")
    bal = mean_over_seeds(rows, "balanced_split_fraction", "algo", "K", "potential")
    fig, ax = plt.subplots(figsize=(5, 3.6))
    _plot_lines(ax, {f"{a.removeprefix('sb3_').upper()} φ={p}": {k: win[(a, k, p)] for k in ks if (a, k, p) in win}
                     for a in algos for p in pots}, "attacker vs optimal defender", "attacker win rate")
    _save(fig, docs / "attacker.png")
    body = [[a, str(p), *(f"{_fmt(win.get((a, k, p)))} ({_fmt(bal.get((a, k, p)))})" for k in ks)]
            for a in algos for p in pots]
    return _markdown(["algo", "φ(S0)", *(f"K={k}" for k in ks)], body)


def report_multiagent(rows: list[dict[str, Any]], docs: Path, plt) -> str:
    ks = sorted({r["K"] for r in rows})
    single = [r for r in rows if r["algo"] == "sb3_ppo"]
    multi = [r for r in rows if r["algo"] == "ess_multiagent"]
    series = {
        "single-agent (trained vs optimal) on disjoint support":
            {k[0]: v for k, v in mean_over_seeds(single, "vs_disjoint_support/win_rate", "K").items()},
        "multi-agent on disjoint support":
            {k[0]: v for k, v in mean_over_seeds(multi, "defender_vs_disjoint_support/win_rate", "K").items()},
        "single-agent on optimal attacker":
            {k[0]: v for k, v in mean_over_seeds(single, "win_rate", "K").items()},
        "multi-agent on optimal attacker":
            {k[0]: v for k, v in mean_over_seeds(multi, "defender_vs_optimal/win_rate", "K").items()},
    }
    fig, ax = plt.subplots(figsize=(6, 3.8))
    _plot_lines(ax, series, "defender generalisation", "defender win rate")
    _save(fig, docs / "multiagent.png")
    extra = {
        "multi-agent attacker vs optimal defender":
            mean_over_seeds(multi, "attacker_vs_optimal/win_rate", "K"),
        "learned defender vs learned attacker (defender win rate)":
            mean_over_seeds(multi, "learned_vs_learned/win_rate", "K"),
    }
    body = [[label, *(_fmt(points.get(k)) for k in ks)] for label, points in series.items()]
    body += [[label, *(_fmt(points.get((k,))) for k in ks)] for label, points in extra.items()]
    return _markdown(["defender", *(f"K={k}" for k in ks)], body)


REPORTS = {"ess_defender_grid": report_defender_grid, "ess_supervised": report_supervised,
           "ess_attacker": report_attacker, "ess_multiagent": report_multiagent}


def report(out: Path, docs: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs.mkdir(parents=True, exist_ok=True)
    for experiment, make in REPORTS.items():
        rows = load(out, experiment)
        if not rows:
            print(f"## {experiment}: no finished jobs under {out / experiment}\n")
            continue
        wall = sum(float(r.get("wall_time_s", 0.0)) for r in rows)
        budgets = sorted({r["frames_budget"] for r in rows})
        seeds = sorted({r["seed"] for r in rows})
        print(f"## {experiment}: {len(rows)} jobs, frame budget {budgets}, seeds {seeds}, "
              f"training wall time {wall / 60:.1f} min\n")
        print(make(rows, docs, plt) + "\n")
        plt.close("all")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="train every job of an experiment, one after the other")
    run_p.add_argument("experiment", choices=EXPERIMENTS)
    run_p.add_argument("--seeds", type=int, nargs="+", default=[0])
    run_p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    run_p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job")
    rep_p = sub.add_parser("report", help="figures to docs/ess and markdown tables to stdout")
    rep_p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    rep_p.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args.experiment, args.seeds, args.overrides, args.out)
    else:
        report(args.out, args.docs)


if __name__ == "__main__":
    main()
