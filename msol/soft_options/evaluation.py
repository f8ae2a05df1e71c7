"""Evaluation episodes on separate envs (the test start distribution), one episode per env, all slots at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from msol.common.envs_adapter import MultitaskEnv, StepOut
from msol.common.protocol import evaluate_episodes
from msol.soft_options.acting import act
from msol.soft_options.inputs import policy_input
from msol.soft_options.networks import HierarchicalPolicy


@torch.no_grad()
def evaluate_slots(
    policy: HierarchicalPolicy, env: MultitaskEnv, *, seed: int, greedy: bool = False, greedy_master: bool = False,
    slot_tasks: list[str] | None = None, observe_prev_action: bool = False, generator: torch.Generator | None = None,
    on_step: Callable[[StepOut, np.ndarray], None] | None = None,
) -> dict[str, float]:
    """Run exactly one episode in every env of ``env`` and return mean returns overall and per task.

    ``greedy``: argmax of termination and intra-option policies; ``greedy_master``: argmax of the master too;
    ``generator``: what sampled steps draw from (``policy`` is a population of one); ``on_step``: passed to
    :func:`evaluate_episodes`.

    ``slot_tasks`` (default: the env's current ones) must match the training slots' tasks, because each slot's
    master and posteriors were trained for the task of that slot.
    """
    device = policy.device
    slot = torch.as_tensor(env.slot_of_env, dtype=torch.long, device=device)
    z_prev = torch.zeros(env.num_envs, dtype=torch.long, device=device)
    prev_action = torch.full((env.num_envs,), -1, dtype=torch.long, device=device)

    def step(obs: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        nonlocal z_prev, prev_action
        if observe_prev_action:
            prev_action = torch.where(first > 0, -1, prev_action)
        x = policy_input(obs, prev_action if observe_prev_action else None, env.action_dim)
        chosen = act(policy, x, z_prev, first, slot, generators=[generator], greedy_options=greedy,
                     greedy_master=greedy_master)
        z_prev, prev_action = chosen.z, chosen.action
        return chosen.action

    tasks = list(env.slot_tasks) if slot_tasks is None else slot_tasks
    return evaluate_episodes(env, seed=seed, slot_tasks=tasks, act=step, device=device, on_step=on_step)
