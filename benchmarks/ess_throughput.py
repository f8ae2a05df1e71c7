"""Speed of the ESS game core: whole games per second on a batch, and single-env steps per second.

    python benchmarks/ess_throughput.py [--games 10000]

The batched core is what evaluation uses (1000 test games per evaluation); the single-game environments are what
SB3 steps during training.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from msol.envs.ess import (
    ESSAttackerEnv,
    ESSDefenderEnv,
    make_attacker,
    make_defender,
    play_games,
    sample_start_states,
)


def batched_games_per_second(K: int, potential: float, attacker: str, n_games: int) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    starts = sample_start_states(K, potential, n_games, rng)
    play_games(starts, make_attacker(attacker), make_defender("optimal"), rng)
    return n_games / (time.perf_counter() - start)


def env_steps_per_second(env, n_steps: int = 3000) -> float:
    env.reset(seed=0)
    env.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=10000)
    args = parser.parse_args()
    print("| K | batched games/s (mixture attacker) | defender env steps/s | attacker env steps/s |")
    print("|---|---|---|---|")
    for K in (5, 10, 15, 20):
        games = batched_games_per_second(K, 0.99, "mixture", args.games)
        defender = env_steps_per_second(ESSDefenderEnv(K=K, potential=0.99))
        attacker = env_steps_per_second(ESSAttackerEnv(K=K, potential=1.1))
        print(f"| {K} | {games:,.0f} | {defender:,.0f} | {attacker:,.0f} |")


if __name__ == "__main__":
    main()
