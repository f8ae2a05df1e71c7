"""Does a change keep every learner's behaviour? Short seeded runs of each learner, their metrics rows without the
timing columns, written to one JSON file per run; `--compare` says which runs differ between two such folders.

A refactor that must not change what is learned (device placement, a faster kernel, a reorganised module) is
checked by running this from a worktree of the commit before and from one after, on the same machine:

    git worktree add /tmp/before <commit> && (cd /tmp/before && python benchmarks/seeded_rows.py --out /tmp/rows-before)
    python benchmarks/seeded_rows.py --out /tmp/rows-after
    python benchmarks/seeded_rows.py --compare /tmp/rows-before /tmp/rows-after

Each run trains in a subprocess of the checkout it is started from (`python -m msol.train` with that checkout first on
`PYTHONPATH`). Float results differ between CPUs, so compare folders written on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("time", "per_s", "fps", "wall", "seconds", "finished_at")

# name -> overrides: every learner, and the paths through MSOL's (PPO, frozen options, previous action, populations).
RUNS: dict[str, list[str]] = {
    "msol_mb": ["env=moving_bandits", "algo=msol", "budget_scale=0.003"],
    "msol_taxi": ["env=taxi", "algo=msol", "budget_scale=0.002"],
    "frozen_mb": ["env=moving_bandits", "algo=msol_frozen", "budget_scale=0.003"],
    "da_taxi": ["env=taxi", "algo=distral_action", "budget_scale=0.002"],
    "ppo_mb": ["env=moving_bandits", "algo=ppo", "budget_scale=0.003"],
    "pop_mb": ["env=moving_bandits", "algo=msol", "budget_scale=0.003", "population=2"],
    "mlsh_mb": ["env=moving_bandits", "algo=mlsh", "budget_scale=0.0005"],
    "oc_taxi": ["env=taxi", "algo=option_critic", "budget_scale=0.002"],
    "hard_taxi": ["env=taxi", "algo=hard_options", "budget_scale=0.002"],
    "tpcl_acro": ["env=acrobot", "algo=trust_pcl", "budget_scale=0.01"],
    "trpo_acro": ["env=acrobot", "algo=trpo", "budget_scale=0.01"],
    "tpcl_mb": ["env=moving_bandits", "algo=trust_pcl", "budget_scale=0.01"],
}


def time_free_rows(run_dir: Path) -> dict[str, list[dict]]:
    """Every ``metrics.jsonl`` under ``run_dir`` (a population has one per member), without timing columns."""
    return {str(path.relative_to(run_dir)): [{k: v for k, v in json.loads(line).items()
                                              if not any(t in k for t in TIMING)}
                                             for line in path.read_text().splitlines()]
            for path in sorted(run_dir.rglob("metrics.jsonl"))}


def record(out: Path, names: list[str]) -> list[str]:
    """Train each named run and write ``<out>/<name>.json``; returns the names that failed."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    failed = []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp) / name
            result = subprocess.run([sys.executable, "-m", "msol.train", *RUNS[name], f"run_dir={run_dir}",
                                     "logger.progress_bar=false"], cwd=tmp, env=env, capture_output=True, text=True,
                                    check=False)
            if result.returncode != 0:
                print(f"FAILED {name} (exit {result.returncode}): {result.stderr.strip()[-500:]}")
                failed.append(name)
                continue
            (out / f"{name}.json").write_text(json.dumps(time_free_rows(run_dir), sort_keys=True))
        print(f"ok {name}")
    return failed


def compare(before: Path, after: Path) -> list[str]:
    """The runs whose rows differ (or exist on one side only)."""
    names = sorted({p.stem for p in before.glob("*.json")} | {p.stem for p in after.glob("*.json")})
    differ = []
    for name in names:
        a, b = before / f"{name}.json", after / f"{name}.json"
        same = a.exists() and b.exists() and a.read_bytes() == b.read_bytes()
        print(f"{'same' if same else 'DIFFERS'} {name}")
        if not same:
            differ.append(name)
    return differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path, help="folder to write <run>.json into")
    group.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=list(RUNS))
    args = parser.parse_args()
    if args.compare:
        return 1 if compare(*args.compare) else 0
    return 1 if record(args.out, args.runs) else 0


if __name__ == "__main__":
    sys.exit(main())
