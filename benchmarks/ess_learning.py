"""Learning targets for the ESS agents (kept out of the unit tests: minutes, not seconds).

    nice -n 10 python benchmarks/ess_learning.py

Each target trains one agent and checks its deterministic win rate on 1000 fresh games; the numbers it prints are
the ones quoted in docs/ess.md ("Learning targets").
"""

from __future__ import annotations

import time

import torch
from stable_baselines3.common.env_util import make_vec_env

from msol.baselines.ess.agents import make_agent, observation_stats, predictor
from msol.baselines.ess.metrics import evaluate_attacker, evaluate_defender
from msol.envs.ess import ESSAttackerEnv, ESSDefenderEnv

PPO_KWARGS = {"n_steps": 25, "batch_size": 50, "n_epochs": 4, "gamma": 0.99, "gae_lambda": 0.95, "clip_range": 0.2,
              "ent_coef": 0.01}
DQN_KWARGS = {"buffer_size": 50000, "learning_starts": 1000, "batch_size": 32, "train_freq": 1,
              "target_update_interval": 500, "exploration_fraction": 0.1, "exploration_final_eps": 0.02}

# (name, algo, env factory, agent kwargs, frames, evaluate, target win rate)
TARGETS = [
    ("PPO defender K=5 φ=0.95", "ppo", lambda: ESSDefenderEnv(K=5, potential=0.95),
     {"lr_schedule": "linear", "kwargs": PPO_KWARGS, "n_envs": 4}, 10_000,
     lambda p: evaluate_defender(p, 5, 0.95), 0.95),
    ("DQN defender K=10 φ=0.99", "dqn", lambda: ESSDefenderEnv(K=10, potential=0.99),
     {"lr": 5e-4, "kwargs": DQN_KWARGS, "n_envs": 1}, 20_000,
     lambda p: evaluate_defender(p, 10, 0.99), 0.9),
    ("PPO attacker K=5 φ=1.1", "ppo", lambda: ESSAttackerEnv(K=5, potential=1.1),
     {"lr_schedule": "linear", "kwargs": PPO_KWARGS, "n_envs": 4}, 10_000,
     lambda p: evaluate_attacker(p, 5, 1.1), 0.9),
]


def main() -> None:
    torch.set_num_threads(1)
    failures = 0
    for name, algo, env_fn, options, frames, evaluate, target in TARGETS:
        options = dict(options)
        n_envs = options.pop("n_envs")
        start = time.time()
        model = make_agent(algo, make_vec_env(env_fn, n_envs=n_envs, seed=0),
                           obs_stats=observation_stats(env_fn(), 2000), seed=0, **options)
        model.learn(frames)
        win = evaluate(predictor(model))["win_rate"]
        ok = win >= target
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name}: win rate {win:.3f} (target {target}) after {frames} frames, "
              f"{time.time() - start:.0f}s", flush=True)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
