"""Moving Bandits comparison (MSOL paper Fig. 2a) at a reduced budget: MSOL, MSOL(frozen), DISTRAL(+action), MLSH.

Reports the final transfer evaluation return of each algorithm (mean over seeds, 95% bootstrap interval) against
the optimum ≈ 43.8 and the one-goal level ≈ 21.9, and how often the learned options all head to the same goal
(`options/same_goal_fraction`: MSOL's prior options, MLSH's sub-policies). Draws the paper-style figure with
`msol.plot`.

    python benchmarks/mb_comparison.py [--seeds 0 1 2] [--option-frames 150000] [--mlsh-option-frames 300000]
                                       [--algos msol msol_frozen distral_action mlsh] [--parallel 1] [--write-docs]

MSOL(frozen) starts from the MSOL run of its seed (`init_from=`): the two share one option learning, as in the
paper, and differ only by the transfer.

Reduced budget (the paper: 0.6M option-learning frames per task for the MSOL family, 6M for MLSH): option learning
is cut to `--option-frames` per task (MLSH: `--mlsh-option-frames`), with the MSOL family's task-slot resets every
third of it as in the paper (200k of 600k); transfer keeps the paper's 0.1M frames per task.
Runs go to `runs/bench/mb_comparison/moving_bandits/<algo>/s<seed>`; finished runs are read, interrupted ones resumed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` importable
from benchmarks._runs import ROOT, TrainJob, read_run, replace_section, run_all

DOCS = ROOT / "docs" / "benchmarks.md"
FIGURE = ROOT / "docs" / "figures" / "mb_comparison.png"
HEADING = "## Moving Bandits comparison: MSOL, MSOL(frozen), DISTRAL(+action), MLSH"
ALGOS = ("msol", "msol_frozen", "distral_action", "mlsh")
OPTIMUM, ONE_GOAL = 43.8, 21.9


def jobs_for(out: Path, seeds: list[int], option_frames: int, mlsh_option_frames: int,
             algos: tuple[str, ...] = ALGOS) -> list[TrainJob]:
    jobs = []
    for seed in seeds:  # seed-major: an interrupted benchmark has every algorithm on the first seeds
        by_algo: dict[str, TrainJob] = {}
        for algo in algos:
            # MSOL family: regular task-slot resets keep the paper's ratio (every 200k of 600k frames per task), so
            # the shortened option learning still has 3 resets per slot — the resets are what make priors matter.
            budget = [f"algo.option_frames_per_task={mlsh_option_frames}"] if algo == "mlsh" else \
                [f"env.hparams.option_frames_per_task={option_frames}",
                 f"env.hparams.slot_reset_frames_per_task={option_frames // 3}"]
            overrides = ["env=moving_bandits", f"algo={algo}", f"seed={seed}", *budget]
            source = by_algo.get("msol") if algo == "msol_frozen" else None
            if source is not None:
                overrides.append(f"init_from={source.run_dir}")
            by_algo[algo] = TrainJob(out / "moving_bandits" / algo / f"s{seed}", overrides, after=source)
            jobs.append(by_algo[algo])
    return jobs


def final_result(run_dir: Path) -> dict:
    rows, summary = read_run(run_dir)
    evals = [r for r in rows if r["phase"] == "transfer/eval"]
    return {"final": evals[-1]["return/mean"], "same_goal": summary.get("options/same_goal_fraction"),
            "wall_min": summary["wall_time_s"] / 60}


def bootstrap(values: list[float]) -> tuple[float, float]:
    from msol.plot import bootstrap_mean_ci

    lo, hi = bootstrap_mean_ci(np.asarray(values, dtype=float))
    return float(lo), float(hi)


def table(results: dict[str, list[dict]]) -> list[str]:
    lines = [("| algorithm | final transfer eval return (mean [95% CI]) | per seed | % of optimum 43.8 | "
              "options all to the same goal (per seed) | wall time per run (min) |"), "|---|---|---|---|---|---|"]
    for algo, runs in results.items():
        finals = [r["final"] for r in runs]
        lo, hi = bootstrap(finals)
        # DISTRAL has one "option": all-to-the-same-goal is trivially true there, so it is not reported.
        same = "no options" if algo.startswith("distral") else \
            ", ".join("–" if r["same_goal"] is None else f"{r['same_goal']:.2f}" for r in runs)
        lines.append(f"| {algo} | {np.mean(finals):.1f} [{lo:.1f}, {hi:.1f}] | "
                     f"{', '.join(f'{f:.1f}' for f in finals)} | {100 * np.mean(finals) / OPTIMUM:.0f}% | {same} | "
                     f"{np.mean([r['wall_min'] for r in runs]):.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--option-frames", type=int, default=150_000, help="MSOL-family option frames per task")
    parser.add_argument("--mlsh-option-frames", type=int, default=300_000, help="MLSH option frames per task")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (one core each)")
    parser.add_argument("--nice", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "mb_comparison")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="report the finished runs, start none")
    args = parser.parse_args()
    algos = tuple(args.algos)
    jobs = jobs_for(args.out, args.seeds, args.option_frames, args.mlsh_option_frames, algos)
    if not args.report_only and run_all(jobs, args.parallel, nice=args.nice):
        raise SystemExit(f"a run failed; logs next to their run dirs under {args.out}")
    results = {a: [final_result(j.run_dir) for j in jobs if j.run_dir.parent.name == a and j.finished]
               for a in algos}
    results = {a: runs for a, runs in results.items() if runs}
    unfinished = [f"{j.run_dir.parent.name} {j.run_dir.name}" for j in jobs if not j.finished]

    from msol.plot import plot_sweep

    report = plot_sweep(args.out, args.out / "plot", phase="transfer/eval")
    mlsh = "mlsh" in algos
    cmd = (f"python benchmarks/mb_comparison.py --seeds {' '.join(map(str, args.seeds))} --option-frames "
           f"{args.option_frames}" + (f" --mlsh-option-frames {args.mlsh_option_frames}" if mlsh else "") +
           f" --algos {' '.join(algos)} --parallel {args.parallel}")
    text = "\n".join([
        HEADING, "",
        f"Command: `{cmd}`; date {date.today()}; seeds {args.seeds}; CPU, 1 torch thread per run. Budget per task: "
        f"option learning {args.option_frames / 1e3:.0f}k frames with task-slot resets every "
        f"{args.option_frames // 3 / 1e3:.0f}k (" + (f"MLSH {args.mlsh_option_frames / 1e3:.0f}k; " if mlsh else "") +
        "paper 0.6M with resets every 200k" + (", MLSH 6M" if mlsh else "") +
        "), transfer 100k frames (paper) on new goal layouts; MSOL(frozen) transfers from the MSOL run of "
        "its seed (`init_from`); one run at a time, next to other jobs on the 2-core machine." +
        (f" **Not run yet: {', '.join(unfinished)}** (the same command without `--report-only` continues)."
         if unfinished else ""), "",
        *table(results), "",
        (f"Optimum ≈ {OPTIMUM}; an agent that always goes to one goal gets ≈ {ONE_GOAL}. Final return = the last "
         "evaluation (one episode in each of 4 eval envs per task slot). Same-goal share: share of random goal "
         "layouts in which every option, followed alone from the start, ends nearest the same goal — MSOL: its "
         "prior options (greedy, 256 layouts, `options/same_goal_fraction`); MLSH: its sub-policies (32 layouts, "
         "`options_same_goal` of the last option-learning evaluation); DISTRAL has no options."), "",
        f"![Moving Bandits transfer return against frames per task](figures/{FIGURE.name})", ""])
    print(text)
    if args.write_docs:
        FIGURE.parent.mkdir(parents=True, exist_ok=True)
        FIGURE.write_bytes(report.figure.read_bytes())
        replace_section(DOCS, HEADING, text)


if __name__ == "__main__":
    main()
