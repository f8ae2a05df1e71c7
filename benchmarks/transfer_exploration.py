"""Does an MSOL run's transfer start explore the transfer tasks? Taxi family: how often it picks up and delivers.

A transfer learns only from rewards its first episodes happen to earn; on Taxi the only one is the delivery. This
measures, for the policy a transfer starts from (``_transfer_policy``: a fresh master over the learned option priors,
posteriors equal to the priors, the learned terminations; everything sampled, as in the first training rollouts),
the share of 50-step test episodes in which the taxi picks the passenger up and in which it delivers — on the map
the options were learned on and on the transfer map (``env.transfer_id``, e.g. moved locations) — beside uniform
random actions (what A2C from scratch starts from):

    python benchmarks/transfer_exploration.py <msol run dir> [<run dir> ...] [--episodes 2000] [--seed 0]

A run directory needs ``config.yaml`` and ``checkpoints/options.pt`` (the end of option learning). Prints one
markdown table per run.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: `msol` from this checkout
from msol.common.checkpoint import load_checked
from msol.common.envs_adapter import MultitaskEnv, StepOut, make_env, resolve_tasks
from msol.common.protocol import evaluate_episodes
from msol.soft_options.evaluation import evaluate_slots
from msol.soft_options.networks import HierarchicalPolicy
from msol.soft_options.trainer import _make_policy, _transfer_policy


@dataclass
class Exploration:
    pickup: np.ndarray    # per task: share of episodes with a pickup
    delivery: np.ndarray  # per task: share of episodes with a delivery
    deliveries: int       # episodes with a delivery, all tasks
    mean_return: float


def transfer_start_policy(run_dir: Path, env: MultitaskEnv, seed: int,
                          options_state: dict[str, Any] | None = None) -> HierarchicalPolicy:
    """The policy a transfer of the run in ``run_dir`` starts from, with one slot per slot of ``env``
    (``options_state``: its ``checkpoints/options.pt``, read here when not given)."""
    cfg = OmegaConf.load(run_dir / "config.yaml")
    state = options_state or load_checked(run_dir / "checkpoints" / "options.pt")
    generators = [torch.Generator().manual_seed(seed)]
    source = _make_policy(cfg, env, int(cfg.algo.num_slots), generators=generators)
    source.load_member(0, state["learner"]["policy"])
    return _transfer_policy(cfg, source, env, len(env.slot_tasks), generators=generators)


def explore(env: MultitaskEnv, policy: HierarchicalPolicy | None, seed: int,
            observe_prev_action: bool = False) -> Exploration:
    """One test episode in every env of ``env`` (``evaluate_episodes``): ``policy`` sampled (None: uniform random
    actions)."""
    cells = env.vec.core.map.num_cells
    picked, delivered = np.zeros(env.num_envs, dtype=bool), np.zeros(env.num_envs, dtype=bool)

    def record(out: StepOut, finished: np.ndarray) -> None:
        ended = out.terminated | out.truncated
        reached = np.where(ended[:, None], out.final_obs, out.obs) if ended.any() else out.obs  # not the next reset's
        aboard = (reached.argmax(-1) // cells) % 2 == 1  # the one-hot's index: (heading * 2 + passenger) * cells + cell
        picked[:] |= ~finished & aboard
        delivered[:] |= ~finished & out.terminated

    tasks, cpu = list(env.slot_tasks), torch.device("cpu")
    if policy is None:
        rng = np.random.default_rng(seed)
        row = evaluate_episodes(env, seed=seed, slot_tasks=tasks, device=cpu, on_step=record,
                                act=lambda obs, first: torch.as_tensor(rng.integers(env.action_dim, size=len(obs))))
    else:
        row = evaluate_slots(policy, env, seed=seed, slot_tasks=tasks, observe_prev_action=observe_prev_action,
                             generator=torch.Generator().manual_seed(seed), on_step=record)
    picked |= delivered  # the drop-off step's final observation has the passenger out again
    slots = range(len(tasks))
    pickup, delivery = (np.array([flags[env.slot_of_env == s].mean() for s in slots]) for flags in (picked, delivered))
    return Exploration(pickup, delivery, int(delivered.sum()), row["return/mean"])


def report(run_dir: Path, episodes: int, seed: int) -> str:
    cfg: DictConfig = OmegaConf.load(run_dir / "config.yaml")
    options_state = load_checked(run_dir / "checkpoints" / "options.pt")
    header = ("| map | policy | P(pickup) mean [min, max] over tasks | P(delivery) mean [min, max] | deliveries | "
              "mean return |")
    lines = [f"{run_dir}: {episodes} sampled test episodes per task and map (seed {seed})", "", header,
             "|---|---|---|---|---:|---:|"]
    for transfer in (False, True):
        probe = make_env(cfg, ["__probe__"], mode="test", envs_per_slot=1, seed=seed, transfer=transfer)
        tasks = resolve_tasks(cfg.env.transfer_tasks, probe.tasks)
        env = make_env(cfg, tasks, mode="test", envs_per_slot=episodes, seed=seed, transfer=transfer)
        name = str(cfg.env.transfer_id if transfer and cfg.env.get("transfer_id") else cfg.env.id)
        start = transfer_start_policy(run_dir, env, seed, options_state)
        for label, policy in (("transfer start", start), ("uniform random", None)):
            result = explore(env, policy, seed, bool(cfg.algo.observe_prev_action))
            lines.append(f"| {name} | {label} | {_spread(result.pickup)} | {_spread(result.delivery)} | "
                         f"{result.deliveries} / {episodes * len(tasks)} | "
                         f"{result.mean_return:.3f} |")
    return "\n".join(lines)


def _spread(values: np.ndarray) -> str:
    return f"{values.mean():.2g} [{values.min():.2g}, {values.max():.2g}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path)
    parser.add_argument("--episodes", type=int, default=2000, help="test episodes per task and map (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for run_dir in args.run_dirs:
        if not (run_dir / "checkpoints" / "options.pt").is_file() or not (run_dir / "config.yaml").is_file():
            raise SystemExit(f"{run_dir}: needs config.yaml and checkpoints/options.pt (an MSOL run past its option "
                             "learning)")
        print(report(run_dir, args.episodes, args.seed), end="\n\n")


if __name__ == "__main__":
    main()
