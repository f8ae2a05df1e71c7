"""Evaluation episodes on separate envs (the test start distribution), one episode per env, all slots at once."""

from __future__ import annotations

import numpy as np
import torch

from msol.acting import act
from msol.envs_adapter import MultitaskEnv
from msol.inputs import policy_input
from msol.networks import HierarchicalPolicy


@torch.no_grad()
def evaluate_slots(
    policy: HierarchicalPolicy, env: MultitaskEnv, *, seed: int, greedy: bool = False,
    slot_tasks: list[str] | None = None, observe_prev_action: bool = False,
) -> dict[str, float]:
    """Run exactly one episode in every env of ``env`` and return mean returns overall and per task.

    ``slot_tasks`` (default: the env's current ones) must match the training slots' tasks, because each slot's
    master and posteriors were trained for the task of that slot.
    """
    if slot_tasks is not None:
        env.set_slot_tasks(slot_tasks)
    obs = torch.as_tensor(env.reset(seed=seed), dtype=torch.float32)
    n = env.num_envs
    slot = torch.as_tensor(env.slot_of_env, dtype=torch.long)
    returns = np.zeros(n)
    lengths = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    z_prev = torch.zeros(n, dtype=torch.long)
    first = torch.ones(n)
    prev_action = torch.full((n,), -1, dtype=torch.long)
    while not done.all():
        x = policy_input(obs, prev_action if observe_prev_action else None, env.action_dim)
        step = act(policy, x, z_prev, first, slot, greedy_options=greedy)
        out = env.step(step.action.numpy())
        returns += np.where(done, 0.0, out.reward)
        lengths += ~done
        done |= out.terminated | out.truncated
        obs = torch.as_tensor(out.obs, dtype=torch.float32)
        z_prev, first = step.z, torch.as_tensor(out.terminated | out.truncated, dtype=torch.float32)
        prev_action = torch.where(first > 0, -1, step.action) if observe_prev_action else prev_action
    row = {"return/mean": float(returns.mean()), "episode_length": float(lengths.mean())}
    tasks = np.asarray([env.slot_tasks[s] for s in env.slot_of_env])
    for task in sorted(set(tasks.tolist())):
        row[f"return/{task}"] = float(returns[tasks == task].mean())
    return row
