"""Taxi learning benchmark: option learning then transfer with test starts, several seeds.

Reports, per seed and averaged: the final transfer evaluation return against the optimum 0.590, the transfer
frames per task needed to reach 90% of the optimum, and the wall time of the whole run.

    python benchmarks/msol_taxi_learning.py --seeds 0 1 2 [--budget-scale 1.0] [--parallel 2] [--write-docs]

``--budget-scale`` multiplies both phases' budgets (paper: 1.4M option-learning frames per task, 0.3M transfer).
Runs go to ``runs/bench/taxi_learning/s<seed>``; an existing finished run is read instead of re-run.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` importable
from benchmarks._runs import ROOT, TrainJob, read_run, replace_section, run_all

DOCS = ROOT / "docs" / "benchmarks.md"
FIGURES = ROOT / "docs" / "figures"
HEADING = "## MSOL learning on Taxi (option learning → transfer, test starts)"
OPTIMUM = 0.590


def read_seed(run_dir: Path) -> dict:
    rows, summary = read_run(run_dir)
    evals = [r for r in rows if r["phase"] == "transfer/eval"]
    reach = next((r["frames_per_task"] for r in evals if r["return/mean"] >= 0.9 * OPTIMUM), None)
    # the fps column of a phase's last training row is that phase's average frames/s (all slots)
    fps = {p: [r for r in rows if r["phase"] == p][-1]["fps"] for p in ("options", "transfer")}
    tasks = {k.removeprefix("return/"): v for k, v in evals[-1].items() if k.startswith("return/") and k != "return/mean"}
    return {"final": evals[-1]["return/mean"], "frames_to_90": reach, "wall_min": summary["wall_time_s"] / 60,
            "fps": fps, "tasks": tasks,
            "options_final": [r for r in rows if r["phase"] == "options/eval"][-1]["return/mean"],
            "curve": [(r["frames_per_task"], r["return/mean"]) for r in evals]}


def task_table(results: dict[int, dict]) -> list[str]:
    """Final transfer return per task and seed against that task's own optimum (test starts): the issue's
    "no task below 50% of its own optimum" target. Evaluation: 4 episodes per task."""
    from msol.envs.optimal import taxi_optimal_returns

    optimum = taxi_optimal_returns("8x8", "test")
    seeds = sorted(results)
    lines = ["| task | optimum | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|" + "---|" * len(seeds)]
    for task, best in optimum.items():
        cells = [f"{results[s]['tasks'][task]:.2f} ({100 * results[s]['tasks'][task] / best:.0f}%)" for s in seeds]
        lines.append(f"| {task} | {best:.3f} | " + " | ".join(cells) + " |")
    worst = min(results[s]["tasks"][t] / optimum[t] for s in seeds for t in optimum)
    lines.append(f"\nLowest share of a task's own optimum in any seed: {100 * worst:.0f}%.")
    return lines


def progress(out: Path, seeds: list[int]) -> str:
    """Where each unfinished run is: its last metrics row's phase and frames per task."""
    parts = []
    for seed in seeds:
        rows, _ = read_run(out / f"s{seed}")
        last = rows[-1] if rows else None
        parts.append(f"seed {seed}: " + (f"{last['phase']} at {last['frames_per_task']:,} frames per task" if last
                                         else "not started"))
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget-scale", type=float, default=1.0)
    parser.add_argument("--parallel", type=int, default=2, help="seeds run at once (one core each)")
    parser.add_argument("--nice", type=int, default=5, help="niceness of the training processes")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "taxi_learning")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="write the report from the finished runs only")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    jobs = [TrainJob(args.out / f"s{seed}", ["env=taxi", "algo=msol", f"seed={seed}",
                                            f"budget_scale={args.budget_scale}", *args.overrides])
            for seed in args.seeds]
    if not args.report_only and run_all(jobs, args.parallel, nice=args.nice):
        raise SystemExit(f"a run failed; see {args.out}/s*.log")
    results = {seed: read_seed(job.run_dir) for seed, job in zip(args.seeds, jobs) if job.finished}
    unfinished = [s for s in args.seeds if s not in results]
    if not results:
        raise SystemExit(f"no finished run under {args.out} for seeds {args.seeds}")
    cmd = "python benchmarks/msol_taxi_learning.py --seeds " + " ".join(map(str, args.seeds)) + \
        f" --budget-scale {args.budget_scale} --parallel {args.parallel}" + \
        ("" if not args.overrides else " " + " ".join(args.overrides))
    lines = [HEADING, "",
             f"Command: `{cmd}`; date {date.today()}; budget {1.4 * args.budget_scale:.3g}M option-learning + "
             f"{0.3 * args.budget_scale:.3g}M transfer frames per task (paper: 1.4M + 0.3M); "
             f"seeds {sorted(results)}; time limits bootstrapped (docs/msol.md)." +
             (f" **Not finished: seeds {unfinished}** ({progress(args.out, unfinished)}; resumable with the same "
              "command)." if unfinished else ""), "",
             ("| seed | options-phase eval return | final transfer eval return | % of optimum 0.590 | "
              "transfer frames/task to 90% | wall time (min) | frames/s options / transfer |"),
             "|---|---|---|---|---|---|---|"]
    for s, r in results.items():
        reach = f"{r['frames_to_90']:,}" if r["frames_to_90"] is not None else "not reached"
        lines.append(f"| {s} | {r['options_final']:.3f} | {r['final']:.3f} | {100 * r['final'] / OPTIMUM:.0f}% | "
                     f"{reach} | {r['wall_min']:.1f} | {r['fps']['options']:,.0f} / {r['fps']['transfer']:,.0f} |")
    mean = sum(r["final"] for r in results.values()) / len(results)
    lines.append(f"| mean | | {mean:.3f} | {100 * mean / OPTIMUM:.0f}% | | | |")
    lines += ["", *task_table(results)]
    from msol.plot import plot_sweep

    for phase in ("options/eval", "transfer/eval"):
        figure = plot_sweep(args.out, args.out / "plot" / phase.split("/")[0], phase=phase).figure
        name = f"taxi_learning_{phase.split('/')[0]}.png"
        if args.write_docs:
            FIGURES.mkdir(parents=True, exist_ok=True)
            (FIGURES / name).write_bytes(figure.read_bytes())
        lines += ["", f"![Taxi {phase} return against frames per task, seeds {sorted(results)}](figures/{name})"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_docs:
        replace_section(DOCS, HEADING, text)


if __name__ == "__main__":
    main()
