"""Moving Bandits option learning under named settings: do the options stay diverse, does the network stay alive?

Runs MSOL's option-learning phase only (`algo.phases=[options]`) for each `--variant` (a name and Hydra overrides)
and seed, and tabulates per run: the last options-phase evaluation return, `options/same_goal_fraction` (share of
random layouts in which every prior option heads to the same goal; 0.5 is what two independent goal-seeking
options give, ≤ 0.2 is the issue's diversity target), and the last log row's collapse diagnostics
(`features/alive_units`, `features/option_gap`, `master/task_spread`; docs/msol.md).

    python benchmarks/mb_option_probe.py --frames 150000 --seeds 0 1 \
        --variant default= --variant out512=env.hparams.encoder_output_size=512 [--parallel 2]

A variant is `name=override1,override2,...` (empty after `=`: the defaults). Task-slot resets keep the paper's
ratio (every third of the option-learning budget). Runs go to `runs/bench/mb_option_probe/<name>/s<seed>`; finished
runs are read, interrupted ones resumed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` importable
from benchmarks._runs import ROOT, TrainJob, read_run, run_all

DIAGNOSTICS = ("features/alive_units", "features/option_gap", "master/task_spread")


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    if not name:
        raise SystemExit(f"--variant {text!r}: expected name=override,override,... (overrides may be empty)")
    return name, [o for o in overrides.split(",") if o]


def run_result(run_dir: Path) -> dict[str, float]:
    rows, summary = read_run(run_dir)
    evals = [r for r in rows if r["phase"] == "options/eval"]
    last = [r for r in rows if r["phase"] == "options"][-1]
    return {"eval": evals[-1]["return/mean"], "same_goal": (summary or {}).get("options/same_goal_fraction", np.nan),
            **{k: last.get(k, np.nan) for k in DIAGNOSTICS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="name=override,override,...")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--frames", type=int, default=150_000, help="option-learning frames per task")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "mb_option_probe")
    args = parser.parse_args()
    variants = dict(parse_variant(v) for v in args.variant)
    jobs = {(name, seed): TrainJob(args.out / name / f"s{seed}", [
        "env=moving_bandits", "algo=msol", "algo.phases=[options]", f"seed={seed}",
        f"env.hparams.option_frames_per_task={args.frames}",
        f"env.hparams.slot_reset_frames_per_task={args.frames // 3}", *overrides])
        for seed in args.seeds for name, overrides in variants.items()}
    failed = run_all(list(jobs.values()), args.parallel)
    print(f"Command: python benchmarks/mb_option_probe.py --frames {args.frames} --seeds "
          f"{' '.join(map(str, args.seeds))} {' '.join(f'--variant {v}' for v in args.variant)}; date {date.today()}")
    print("\n| variant | overrides | seed | options eval return | same-goal share | alive units | option gap | "
          "master task spread |\n|---|---|---|---|---|---|---|---|")
    for (name, seed), job in jobs.items():
        if job in failed:
            print(f"| {name} | {' '.join(variants[name])} | {seed} | failed | | | | |")
            continue
        r = run_result(job.run_dir)
        print(f"| {name} | {' '.join(variants[name]) or 'defaults'} | {seed} | {r['eval']:.1f} | "
              f"{r['same_goal']:.2f} | " + " | ".join(f"{r[k]:.2f}" for k in DIAGNOSTICS) + " |")


if __name__ == "__main__":
    main()
