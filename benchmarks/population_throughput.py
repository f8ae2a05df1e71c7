"""Frames per second per member of a population (``population=S``) against a single run, measured in one process.

For each setting the learner of S members (one forward, backward and optimiser step for all) runs the option-
learning loop (collect + update) in interleaved rounds with every other S, one torch thread. The table gives env
frames per second per member and the speed-up: S × that / the S = 1 figure, i.e. how much sooner S seeds finish
as one population than one after another. Settings use the paper's networks and batch sizes:

* Moving Bandits: the configured slots and envs per slot, 64-64 trunk + 64 option layer.
* Taxi: 12 tasks × 3 envs, 512-256 trunk + 512 option layer.
* MLSH on Moving Bandits: 10 slots × 3 envs, 2×64 tanh networks, 500-step rollouts, after its first joint
  iteration (from then on one slot in ten updates the sub-policies each iteration, as in a run).

    python benchmarks/population_throughput.py [--sizes 1 2 5 10] [--rounds 3] [--seconds 4] [--flops] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` importable
from benchmarks._runs import ROOT, replace_section
from msol.baselines.mlsh.entry import make_mlsh_phase
from msol.common.envs_adapter import make_env
from msol.common.population import PopulationEnv
from msol.common.protocol import build_phases, protocol_phases, task_names
from msol.soft_options.trainer import make_msol_phase

DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Population throughput (many seeds in one process)"
SETTINGS = {"moving_bandits": ["env=moving_bandits", "algo=msol"], "taxi": ["env=taxi", "algo=msol"],
            "mlsh_moving_bandits": ["env=moving_bandits", "algo=mlsh"]}
LABELS = {"moving_bandits": "MSOL moving_bandits", "taxi": "MSOL taxi", "mlsh_moving_bandits": "MLSH moving_bandits"}


def make_learner(setting: str, members: int):
    """The option-learning phase of ``members`` seeds (0 …), warmed up; returns a function running it for a while."""
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=SETTINGS[setting])
    mlsh = cfg.algo.name == "mlsh"
    spec = (protocol_phases(cfg) if mlsh else build_phases(cfg, task_names(cfg)))[0]
    spec.frames_per_task, spec.slot_reset_frames = 10**12, None
    seeds = list(range(members))
    env = PopulationEnv([make_env(cfg, spec.slot_tasks, mode=spec.mode, envs_per_slot=int(cfg.algo.envs_per_slot),
                                  seed=s) for s in seeds])
    make = make_mlsh_phase if mlsh else make_msol_phase
    phase = make(cfg, spec, env, None, [torch.Generator().manual_seed(s) for s in seeds])
    phase.start(seeds=seeds)
    for _ in range(10 if mlsh else 5):  # MLSH: past the first warm-up (W = 9), into the joint iterations
        phase.iterate()

    def run(seconds: float) -> float:
        """Env frames per second per member over at least ``seconds``."""
        frames, t0 = phase.frames, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            phase.iterate()
        return (phase.frames - frames) * spec.num_slots / (time.perf_counter() - t0)

    return run, cfg


def arithmetic_rate(setting: str, seconds: float) -> tuple[float, float]:
    """(GFLOP/s the S = 1 learner's loop reaches, GFLOP/s of one core on a matmul of the update's shape).

    The loop's FLOPs are counted once by ``torch.utils.flop_counter`` (matmuls, forward and backward, acting and the
    update), then divided by the measured time per iteration; the reference is a ``[T·B, 512] @ [512, 512]`` matmul
    (Taxi's widest layer at its update batch) in a loop."""
    from torch.utils.flop_counter import FlopCounterMode

    run, _ = make_learner(setting, 1)
    phase = next(c.cell_contents for c in run.__closure__ if hasattr(c.cell_contents, "iterate"))
    with FlopCounterMode(display=False) as counter:
        phase.iterate()
    flops = counter.get_total_flops()
    iterations, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        phase.iterate()
        iterations += 1
    loop = flops * iterations / (time.perf_counter() - t0) / 1e9
    rows = phase.n_steps * phase.env.num_envs
    a, b = torch.randn(rows, 512), torch.randn(512, 512)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return loop, 2 * rows * 512 * 512 * n / (time.perf_counter() - t0) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 5, 10])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--flops", action="store_true", help="also the arithmetic rate of the Taxi loop at S = 1")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, dict[int, list[float]]] = {}
    for setting in args.settings:
        learners = {s: make_learner(setting, s)[0] for s in args.sizes}
        results[setting] = {s: [] for s in args.sizes}
        for _ in range(args.rounds):  # interleaved: machine load drifts hit every S alike
            for size, run in learners.items():
                results[setting][size].append(run(args.seconds))
        del learners
    sizes = " ".join(map(str, args.sizes))
    command = (f"Command: `python benchmarks/population_throughput.py --sizes {sizes} --settings "
               f"{' '.join(args.settings)} --rounds {args.rounds} --seconds {args.seconds}`; date {date.today()}; {platform.processor() or 'CPU'}, {os.cpu_count()} "
               f"cores, {args.threads} torch thread; load average at the end {os.getloadavg()[0]:.1f}. Option "
               "learning (collect + update, no slot resets), the paper's networks and batch sizes; env frames per "
               "second per member, median over rounds (speed-up: S × that / S=1: how much sooner S seeds finish as "
               "one population than one after another).")
    lines = [HEADING, "", command, "",
             "| setting | " + " | ".join(f"S={s}" for s in args.sizes) + " |",
             "|---|" + "---|" * len(args.sizes)]
    for setting, by_size in results.items():
        base = sorted(by_size[args.sizes[0]])[len(by_size[args.sizes[0]]) // 2]
        cells = []
        for size in args.sizes:
            median = sorted(by_size[size])[len(by_size[size]) // 2]
            cells.append(f"{median:,.0f} ({size * median / base:.2f}×)")
        lines.append(f"| {LABELS[setting]} | " + " | ".join(cells) + " |")
    if args.flops:
        loop, core = arithmetic_rate("taxi", args.seconds)
        lines += ["", (f"Arithmetic rate, Taxi, S = 1 (collect + update, matmul FLOPs counted by "
                       f"`torch.utils.flop_counter`): {loop:.1f} GFLOP/s; one core on a matmul of the update's widest "
                       f"shape: {core:.1f} GFLOP/s ({100 * loop / core:.0f}%).")]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write_docs:
        replace_section(DOCS, HEADING, report)


if __name__ == "__main__":
    main()
