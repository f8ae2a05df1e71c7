"""The margins of the learning tests over several seeds: is each threshold safe on any CPU?

A learning test (``@pytest.mark.learning``) trains briefly and compares one measured number with a threshold. Float
results differ between CPUs, so a threshold that one seed clears by a hair is a coin toss on the next machine. This
runs every learning test once per seed (``pytest -m learning --learning-seeds ...``), reads the numbers they record
(junit properties) and tabulates, per test, the measured value of each seed, the threshold and the worst seed's
margin as a share of the threshold's distance from the no-learning level. A threshold is kept when every seed clears
it with room to spare (docs/benchmarks.md, "Learning-test margins").

    python benchmarks/learning_margins.py --seeds 0 1 2 3 4 [--parallel 2] [--write-docs]
    python benchmarks/learning_margins.py --report-only --out <dir> [--write-docs]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` importable
from benchmarks._runs import ROOT, replace_section

DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Learning-test margins"


def run_tests(seeds: list[int], out: Path, parallel: int) -> list[Path]:
    """One pytest process per share of the seeds; returns their junit files."""
    shares = [seeds[i::parallel] for i in range(parallel) if seeds[i::parallel]]
    out.mkdir(parents=True, exist_ok=True)
    procs, files = [], []
    for i, share in enumerate(shares):
        xml = out / f"learning_{i}.xml"
        args = [sys.executable, "-m", "pytest", "-q", "-m", "learning", "-p", "no:cacheprovider",
                f"--learning-seeds={','.join(map(str, share))}", f"--junitxml={xml}", "tests"]
        with open(out / f"learning_{i}.log", "w") as log:  # the child keeps its own copy of the handle
            procs.append(subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}))
        files.append(xml)
    for proc in procs:
        proc.wait()
    return files


def read_margins(files: list[Path]) -> dict[str, dict]:
    """Test name -> {threshold, direction, measured: {seed: value}, failed: [seeds]} from junit files."""
    tests: dict[str, dict] = defaultdict(lambda: {"measured": {}, "failed": []})
    for xml in files:
        for case in ET.parse(xml).getroot().iter("testcase"):
            name, _, seed = case.get("name", "").partition("[seed")
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            if "learning_measured" not in props:
                continue
            test = tests[f"{case.get('classname', '').rsplit('.', 1)[-1]}::{name}"]
            test["threshold"] = float(props["learning_threshold"])
            test["direction"] = props["learning_direction"]
            test["measured"][int(seed.rstrip("]"))] = float(props["learning_measured"])
            if case.find("failure") is not None or case.find("error") is not None:
                test["failed"].append(int(seed.rstrip("]")))
    return dict(tests)


def table(tests: dict[str, dict]) -> str:
    lines = ["| test | must be | measured per seed | worst seed | margin of the worst seed |",
             "|---|---|---|---:|---:|"]
    for name, t in sorted(tests.items()):
        seeds = sorted(t["measured"])
        above = t["direction"] == "above"
        values = [t["measured"][s] for s in seeds]
        worst = min(values) if above else max(values)
        margin = (worst - t["threshold"]) if above else (t["threshold"] - worst)
        per_seed = ", ".join(f"{t['measured'][s]:.3g}" + (" ✗" if s in t["failed"] else "") for s in seeds)
        lines.append(f"| `{name}` | {'>' if above else '<'} {t['threshold']:g} | {per_seed} (seeds "
                     f"{seeds[0]}–{seeds[-1]}) | {worst:.3g} | {margin:+.3g} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--parallel", type=int, default=1, help="pytest processes (one per core)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "learning_margins")
    parser.add_argument("--report-only", action="store_true", help="read the junit files already in --out")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    files = sorted(args.out.glob("learning_*.xml")) if args.report_only else \
        run_tests(args.seeds, args.out, args.parallel)
    tests = read_margins(files)
    seeds = sorted({s for t in tests.values() for s in t["measured"]})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=True,
                            text=True).stdout.strip()
    text = (f"{HEADING}\n\nCommand: `python benchmarks/learning_margins.py --seeds {' '.join(map(str, seeds))}"
            f" --parallel {args.parallel}`; commit {commit}; date {dt.date.today()}; seeds {seeds}; CPU: this "
            "machine. Every `@pytest.mark.learning` test once per seed (`pytest -m learning --learning-seeds "
            "...`); `make test` runs each at its marker's seed. Margin: how far the worst seed lies on the right "
            "side of the threshold (✗: a seed that failed).\n\n" + table(tests) + "\n")
    print(text)
    if args.write_docs:
        replace_section(DOCS, HEADING, text)
        print(f"wrote the '{HEADING[3:]}' section of {DOCS}")


if __name__ == "__main__":
    main()
