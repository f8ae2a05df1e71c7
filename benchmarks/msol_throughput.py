"""Frames per second of MSOL-A2C on Taxi vs stable-baselines3's A2C, measured in one run.

All learners use 12 tasks × 3 envs = 36 Taxi envs, n = 5 steps per update and a 512-256-512 network; MSOL
computes the whole hierarchy (master, termination, intra-option posteriors and priors, values on z_{t-1}). SB3 is
measured twice: as configured by `net_arch=[512, 256, 512]` (separate policy and value MLPs) and with one shared
512-256-512 trunk, the layout of MSOL's encoder.

    python benchmarks/msol_throughput.py [--frames 200000] [--threads 1] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import gymnasium
import numpy as np
import torch
from hydra import compose, initialize_config_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `benchmarks` importable
from benchmarks._runs import ROOT, replace_section
from msol import envs  # noqa: F401
from msol.common.envs_adapter import make_env
from msol.common.population import PopulationEnv
from msol.common.protocol import PhaseSpec
from msol.soft_options.trainer import MSOLLearner, _make_policy

DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## MSOL-A2C vs stable-baselines3 A2C throughput (Taxi)"


def make_msol(frames_warmup: int = 20, compile_loss: bool = False):
    """MSOL's collect/update loop; ``compile_loss`` wraps the loss forward (``msol.soft_options.losses.rollout_terms``) in
    ``torch.compile`` — a probe of how much kernel fusion would buy, not a library option."""
    import msol.soft_options.losses
    import msol.soft_options.trainer

    # The trainer looks ``rollout_terms`` up at call time: each learner installs its own before it runs, so an
    # eager and a compiled learner can be interleaved in one process.
    eager = msol.soft_options.losses.rollout_terms
    rollout_terms = torch.compile(eager, dynamic=False) if compile_loss else eager
    msol.soft_options.trainer.rollout_terms = rollout_terms
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=["env=taxi", "algo=msol"])
    tasks = list(gymnasium.make("msol/Taxi-v0").unwrapped.tasks)
    env = make_env(cfg, tasks, mode="train", envs_per_slot=3, seed=0)
    spec = PhaseSpec("options", tasks, "train", 12, 10**9, None, tasks)
    generators = [torch.Generator().manual_seed(0)]
    phase = MSOLLearner(cfg, spec, _make_policy(cfg, env, 12, generators=generators), PopulationEnv([env]), generators)
    phase.start(seeds=[0])
    for _ in range(frames_warmup):
        phase.collect()
        phase.update()

    def run(frames: int) -> float:
        msol.soft_options.trainer.rollout_terms = rollout_terms
        start_frames, t0 = phase.frames, time.perf_counter()
        while (phase.frames - start_frames) * 12 < frames:
            phase.collect()
            phase.update()
        return time.perf_counter() - t0

    return run


def make_sb3(shared_trunk: bool = False):
    """SB3's A2C on the same 36 envs. Default: ``net_arch=[512, 256, 512]``, which SB3 builds as two separate MLPs
    (policy and value). ``shared_trunk``: one 512-256-512 ReLU MLP as a shared features extractor with linear
    policy and value heads, i.e. the layout of MSOL's encoder."""
    from stable_baselines3 import A2C
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from stable_baselines3.common.vec_env import DummyVecEnv

    class SharedMLP(BaseFeaturesExtractor):
        def __init__(self, observation_space, sizes=(512, 256, 512)):
            super().__init__(observation_space, features_dim=sizes[-1])
            layers, width = [], int(np.prod(observation_space.shape))
            for size in sizes:
                layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
                width = size
            self.net = torch.nn.Sequential(torch.nn.Flatten(), *layers)

        def forward(self, obs):
            return self.net(obs)

    tasks = list(gymnasium.make("msol/Taxi-v0").unwrapped.tasks)
    vec = DummyVecEnv([lambda t=t: Monitor(gymnasium.make("msol/Taxi-v0", task=t)) for t in tasks for _ in range(3)])
    vec.seed(0)
    policy_kwargs = ({"features_extractor_class": SharedMLP, "net_arch": []} if shared_trunk
                     else {"net_arch": [512, 256, 512]})
    model = A2C("MlpPolicy", vec, n_steps=5, gamma=0.95, learning_rate=1e-3, seed=0, device="cpu",
                policy_kwargs=policy_kwargs, verbose=0)
    model.learn(total_timesteps=36 * 5 * 20)  # warm-up

    def run(frames: int) -> float:
        t0 = time.perf_counter()
        model.learn(total_timesteps=frames, reset_num_timesteps=False)
        return time.perf_counter() - t0

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200_000, help="total env frames measured per learner")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both learners")
    parser.add_argument("--compile", action="store_true",
                        help="also measure MSOL with its loss forward under torch.compile (a probe)")
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Interleaved rounds so that load from other processes hits every learner alike.
    learners = {"msol": make_msol(), "sb3": make_sb3(), "sb3_shared": make_sb3(shared_trunk=True)}
    if args.compile:
        t0 = time.perf_counter()
        learners["msol_compiled"] = make_msol(compile_loss=True)
        compile_seconds = time.perf_counter() - t0
    rounds = 6
    seconds = dict.fromkeys(learners, 0.0)
    for _ in range(rounds):
        for name, run in learners.items():
            seconds[name] += run(args.frames // rounds)
    fps = {name: args.frames / t for name, t in seconds.items()}
    cmd = f"python benchmarks/msol_throughput.py --frames {args.frames} --threads {args.threads}"
    cmd += " --compile" if args.compile else ""
    table = (
        f"{HEADING}\n\n"
        f"Command: `{cmd}`; date {date.today()}; {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} torch thread(s); 36 envs (12 tasks × 3), n=5, 512-256-512; "
        f"{rounds} interleaved rounds; load average at the end {os.getloadavg()[0]:.1f} (2 cores).\n\n"
        "| learner | frames/s | MSOL / this |\n|---|---|---|\n"
        f"| MSOL-A2C (hierarchy: master, termination, intra-option, priors; shared 512-256-512 encoder) | "
        f"{fps['msol']:,.0f} | |\n"
        f"| stable-baselines3 A2C, `net_arch=[512, 256, 512]` (SB3 builds separate policy and value MLPs) | "
        f"{fps['sb3']:,.0f} | {fps['msol'] / fps['sb3']:.2f}× |\n"
        f"| stable-baselines3 A2C, one shared 512-256-512 ReLU MLP + linear heads (MSOL's encoder layout) | "
        f"{fps['sb3_shared']:,.0f} | {fps['msol'] / fps['sb3_shared']:.2f}× |\n"
    )
    if args.compile:
        table += (
            f"\nProbe, not a library option: MSOL-A2C with its loss forward (`msol.soft_options.losses.rollout_terms`, and so its "
            f"backward) under `torch.compile`: {fps['msol_compiled']:,.0f} frames/s = "
            f"{fps['msol_compiled'] / fps['msol']:.2f}× eager MSOL, {fps['msol_compiled'] / fps['sb3']:.2f}× SB3 "
            f"default; {compile_seconds:.0f} s to build and compile.\n"
        )
    print(table)
    if args.write_docs:
        replace_section(DOCS, HEADING, table)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
