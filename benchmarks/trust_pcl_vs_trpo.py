"""Trust-PCL vs TRPO (sb3-contrib) at an equal budget of env steps (Trust-PCL paper Fig. 1 / Table 1, reduced).

Every run is ``python -m msol.train env=<env> algo=<algo> seed=<s>`` in its own process, one at a time, under
``runs/bench/trust_pcl_vs_trpo/<env>/<algo>/s<seed>``. Finished runs (summary.json) are skipped and interrupted
ones resumed, so the command can be re-run after a stop.

    nice -n 10 python benchmarks/trust_pcl_vs_trpo.py throughput             # env steps/s of each algo and env
    nice -n 10 python benchmarks/trust_pcl_vs_trpo.py run --frames 102400    # the comparison (3 seeds)
    python benchmarks/trust_pcl_vs_trpo.py plot                              # figures + table for docs/

Curves: mean undiscounted return of greedy actions (the paper's protocol) on a separate env, against env steps
and against wall-clock time; mean over seeds with the min-max band.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "bench" / "trust_pcl_vs_trpo"   # default of --runs
FIGURES = ROOT / "docs" / "figures"
ENVS = ("acrobot", "swimmer", "hopper", "halfcheetah")
ALGOS = ("trust_pcl", "trpo")
COLORS = {"trust_pcl": "tab:blue", "trpo": "tab:orange"}


def train_command(env: str, algo: str, seed: int, frames: int, run_dir: Path, eval_every: int,
                  eval_episodes: int) -> list[str]:
    overrides = [f"env={env}", f"algo={algo}", f"seed={seed}", f"algo.total_frames={frames}",
                 f"run_dir={run_dir}", "logger.progress_bar=false", f"eval.episodes_per_slot={eval_episodes}",
                 f"env.hparams.eval_interval_frames_per_task={eval_every}",
                 f"env.hparams.log_interval_frames_per_task={min(5000, eval_every)}"]
    if (run_dir / "checkpoints" / "latest.pt").exists():
        overrides.append(f"resume={run_dir}")
    return [sys.executable, "-m", "msol.train", *overrides]


def run_one(env: str, algo: str, seed: int, frames: int, run_dir: Path, eval_every: int, eval_episodes: int) -> dict:
    if (run_dir / "summary.json").exists():
        return json.loads((run_dir / "summary.json").read_text())
    command = train_command(env, algo, seed, frames, run_dir, eval_every, eval_episodes)
    print("$", " ".join(command[1:]), flush=True)
    environ = {**os.environ, "WANDB_MODE": "disabled", "MUJOCO_GL": "egl"}
    subprocess.run(command, check=True, cwd=ROOT, env=environ)
    return json.loads((run_dir / "summary.json").read_text())


def throughput(args: argparse.Namespace) -> None:
    """Env steps per second of each (algo, env), training only (evaluation pushed past the budget)."""
    for env in args.envs:
        for algo in args.algos:
            run_dir = args.runs.parent / "throughput" / env / algo
            if run_dir.exists():
                subprocess.run(["rm", "-rf", str(run_dir)], check=True)
            frames = args.frames
            started = time.time()
            summary = run_one(env, algo, 0, frames, run_dir, eval_every=10**9, eval_episodes=1)
            rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            train = [r for r in rows if r["phase"] == "train"]
            fps = summary["frames"] / train[-1]["wall_time_s"]
            print(f"{env:12s} {algo:10s} {summary['frames']:7d} steps  {fps:7.0f} steps/s  "
                  f"(process {time.time() - started:.1f} s incl. start-up and one greedy eval episode)", flush=True)


def run(args: argparse.Namespace) -> None:
    started = time.time()
    for env in args.envs:
        for seed in args.seeds:
            for algo in args.algos:
                summary = run_one(env, algo, seed, args.frames, args.runs / env / algo / f"s{seed}",
                                  args.eval_every, args.eval_episodes)
                print(f"{env} {algo} s{seed}: final greedy return {summary['final_eval_return']:.1f}, "
                      f"{summary['wall_time_s']:.0f} s; elapsed {time.time() - started:.0f} s", flush=True)


def load_curves(runs: Path, env: str, algo: str, phase: str = "eval") -> list[dict[str, np.ndarray]]:
    """Per finished seed: ``frames``, ``wall_time_s`` and ``return`` (greedy eval, or training episodes)."""
    key = "eval_return" if phase == "eval" else "episode_return"
    curves = []
    for run_dir in sorted((runs / env / algo).glob("s*")):
        if not (run_dir / "summary.json").exists():
            continue
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if r["phase"] == phase and np.isfinite(r[key])]
        curves.append({"frames": np.array([r["frames"] for r in rows]), "return": np.array([r[key] for r in rows]),
                       "wall_time_s": np.array([r["wall_time_s"] for r in rows])})
    return curves


def band(curves: list[dict[str, np.ndarray]], x_key: str, grid: np.ndarray) -> np.ndarray:
    """Each seed's curve on ``grid`` (step interpolation: the last evaluation at or before x)."""
    out = []
    for c in curves:
        idx = np.searchsorted(c[x_key], grid, side="right") - 1
        out.append(np.where(idx >= 0, c["return"][np.clip(idx, 0, None)], np.nan))
    return np.array(out)


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    panels = {  # figure name -> rows of (x key, phase, y label)
        "steps": [("frames", "eval", "greedy return"), ("frames", "train", "training episode return")],
        "walltime": [("wall_time_s", "eval", "greedy return")],
    }
    for name, rows in panels.items():
        fig, axes = plt.subplots(len(rows), len(args.envs), figsize=(4.2 * len(args.envs), 3.2 * len(rows)),
                                 squeeze=False)
        for (x_key, phase, y_label), ax_row in zip(rows, axes):
            for ax, env in zip(ax_row, args.envs):
                for algo in args.algos:
                    curves = load_curves(args.runs, env, algo, phase)
                    if not curves:
                        continue
                    grid = np.linspace(max(c[x_key][0] for c in curves), min(c[x_key][-1] for c in curves), 200)
                    values = band(curves, x_key, grid)
                    ax.plot(grid, np.nanmean(values, 0), color=COLORS[algo], label=f"{algo} ({len(curves)} seeds)")
                    ax.fill_between(grid, np.nanmin(values, 0), np.nanmax(values, 0), color=COLORS[algo], alpha=0.2)
                ax.set_title(env)
                ax.set_xlabel("env steps" if x_key == "frames" else "wall-clock seconds")
                if x_key == "frames":
                    ax.xaxis.set_major_formatter(lambda value, _: f"{value / 1000:.0f}k")
                ax.grid(alpha=0.3)
            ax_row[0].set_ylabel(y_label)
        axes[0][0].legend(fontsize=8)
        fig.tight_layout()
        path = FIGURES / f"{args.runs.name}_{name}.png"
        fig.savefig(path, dpi=110)
        print(f"wrote {path.relative_to(ROOT)}")
    print(summary_table(args))


def summary_table(args: argparse.Namespace) -> str:
    """Final and mean greedy return (the mean over all evaluations is the area under the curve: sample efficiency)."""
    header = ("| env | algo | seeds | env steps | final greedy return | mean greedy return over training (AUC) | "
              "training return, last 2 log rows | wall time (s) |")
    table = [header, "|---|---|---|---|---|---|---|---|"]
    for env in args.envs:
        for algo in args.algos:
            evals, trains = load_curves(args.runs, env, algo, "eval"), load_curves(args.runs, env, algo, "train")
            if not evals:
                continue
            finals = [c["return"][-1] for c in evals]
            aucs = [c["return"].mean() for c in evals]
            last_train = [c["return"][-2:].mean() for c in trains]
            walls = [c["wall_time_s"][-1] for c in evals]
            table.append(f"| {env} | {algo} | {len(evals)} | {int(evals[0]['frames'][-1])} | "
                         f"{np.mean(finals):.1f} ± {np.std(finals):.1f} | {np.mean(aucs):.1f} ± {np.std(aucs):.1f} | "
                         f"{np.mean(last_train):.1f} ± {np.std(last_train):.1f} | {np.mean(walls):.0f} |")
    return "\n".join(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("throughput", "run", "plot"))
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=102_400,
                        help="env steps per run (a multiple of TRPO's 2048-step rollout and Trust-PCL's 10)")
    parser.add_argument("--eval-every", type=int, default=10_240)
    parser.add_argument("--eval-episodes", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=RUNS,
                        help="where the runs live; the figures are named docs/figures/<its name>_{steps,walltime}.png")
    args = parser.parse_args()
    {"throughput": throughput, "run": run, "plot": plot}[args.command](args)


if __name__ == "__main__":
    main()
