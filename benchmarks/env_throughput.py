"""Environment throughput: batched Taxi and Moving Bandits vs gymnasium's Taxi-v4 stepped one env at a time.

    python benchmarks/env_throughput.py            # measures, prints the table, rewrites the docs section
    python benchmarks/env_throughput.py --no-write # only prints

Every configuration is timed in the same process, in interleaved rounds of equal wall-clock length (round r times
Taxi-v4, then every batched configuration), so load from other processes on a shared machine hits all of them
alike. The table reports the best round (the least disturbed, timeit's convention) and the median.
Batched steps go through ``MultitaskVectorEnv.step`` exactly as training does: action checks, same-step autoreset,
episode statistics and infos included. Actions are uniform random, pre-drawn outside the timed loop.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from msol import envs

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADING = "## Environment throughput"
TARGET_RATIO, TARGET_ENVS = 100.0, 1024
NOTES = (
    "Batched = `msol.envs.make_multitask_vector_env(...)` stepped through `MultitaskVectorEnv.step` (same-step "
    "autoreset, episode statistics, infos); Taxi uses 8 task slots, Moving Bandits 2. Taxi-v4 = "
    '`gymnasium.make("Taxi-v4")` stepped one env at a time with `reset()` on episode end. Ratio = best round / '
    "best round of Taxi-v4 in the same run. The machine is shared (2 cores, other jobs running), so absolute "
    "numbers move between runs; interleaved rounds of equal length keep the ratio fair."
)


def timed(step_chunk: Callable[[], int], seconds: float) -> float:
    """Steps per second of repeating ``step_chunk`` (returns env steps done) for at least ``seconds``."""
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        steps += step_chunk()
    return steps / elapsed


def taxi_v4_chunk(seed: int, chunk: int = 2000) -> Callable[[], int]:
    """One env of gymnasium's Taxi-v4 (``gymnasium.make``, default wrappers), reset on episode end."""
    env = gym.make("Taxi-v4")
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, 6, chunk).tolist()

    def run() -> int:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return chunk

    return run


def batched_chunk(
    env_id: str, tasks: list[str], num_envs: int, seed: int, chunk: int = 16
) -> Callable[[], int]:
    """``chunk`` steps of a MultitaskVectorEnv with ``num_envs`` envs spread over ``tasks`` slots."""
    vec = envs.make_multitask_vector_env(env_id, tasks, num_envs // len(tasks), seed=seed)
    vec.reset()
    actions = np.random.default_rng(seed).integers(0, vec.single_action_space.n, (256, num_envs))
    position = 0

    def run() -> int:
        nonlocal position
        for _ in range(chunk):
            vec.step(actions[position])
            position = (position + 1) % len(actions)
        return chunk * num_envs

    return run


def measure(sizes: list[int], rounds: int, seconds: float, seed: int) -> list[dict]:
    taxi_tasks = list(envs.TaxiEnv().tasks[:8])  # 8 slots: every size below divides evenly
    configs: dict[tuple[str, int], Callable[[], int]] = {("Taxi-v4 (1 env)", 1): taxi_v4_chunk(seed)}
    for n in sizes:
        configs[("msol/Taxi-v0", n)] = batched_chunk("msol/Taxi-v0", taxi_tasks, n, seed)
        configs[("msol/MovingBandits-v0", n)] = batched_chunk(
            "msol/MovingBandits-v0", ["goal0", "goal1"], n, seed
        )
    results: dict[tuple[str, int], list[float]] = {key: [] for key in configs}
    for chunk in configs.values():  # warm-up: allocations, caches
        timed(chunk, 0.05)
    for _ in range(rounds):
        for key, chunk in configs.items():
            results[key].append(timed(chunk, seconds))
    base_best = max(results[("Taxi-v4 (1 env)", 1)])
    return [
        {
            "env": env,
            "num_envs": n,
            "best": max(r),
            "median": statistics.median(r),
            "ratio": max(r) / base_best,
        }
        for (env, n), r in results.items()
    ]


def table(rows: list[dict]) -> str:
    lines = [
        "| env | envs | steps/s (best round) | steps/s (median) | × Taxi-v4 (best/best) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['num_envs']} | {r['best']:,.0f} | {r['median']:,.0f} | {r['ratio']:.1f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = match.group(1).strip() if match else cpu
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, load average at start {load}; Python {platform.python_version()}, "
        f"numpy {np.__version__}, gymnasium {gym.__version__}"
    )


def write_section(text: str, path: Path = DOCS) -> None:
    """Replace (or append) the ``## Environment throughput`` section, leaving the other sections alone."""
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    section = f"{HEADING}\n\n{text.strip()}\n\n"
    doc = pattern.sub(lambda _: section, doc) if pattern.search(doc) else doc.rstrip("\n") + "\n\n" + section
    path.write_text(doc.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1024, 4096])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one round of one configuration")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help=f"do not rewrite {DOCS.name}")
    args = parser.parse_args()
    if any(n % 8 for n in args.sizes):
        parser.error(f"--sizes must be multiples of 8 (8 Taxi task slots), got {args.sizes}")

    started = datetime.datetime.now(datetime.timezone.utc)
    host = machine()
    rows = measure(args.sizes, args.rounds, args.seconds, args.seed)
    at_target = (
        next(r for r in rows if r["env"] == "msol/Taxi-v0" and r["num_envs"] == TARGET_ENVS)
        if TARGET_ENVS in args.sizes
        else None
    )
    command = "python benchmarks/env_throughput.py " + shlex.join(sys.argv[1:])
    verdict = ""
    if at_target is not None:
        met = "met" if at_target["ratio"] >= TARGET_RATIO else "NOT met"
        verdict = (
            f"Target ≥{TARGET_RATIO:.0f}× Taxi-v4 for batched Taxi at {TARGET_ENVS} envs: "
            f"{at_target['ratio']:.1f}× — {met}."
        )
    text = "\n\n".join(
        [
            (
                f"Command: `{command.strip()}` (seed {args.seed}, {args.rounds} interleaved rounds of "
                f"{args.seconds:g} s per configuration)."
            ),
            f"Date: {started:%Y-%m-%d %H:%M} UTC. Machine: {host}.",
            table(rows),
            verdict,
            NOTES,
        ]
    )
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"\nwrote the '{HEADING[3:]}' section of {DOCS}")


if __name__ == "__main__":
    main()
