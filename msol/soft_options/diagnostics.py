"""Cheap diagnostics of option collapse, logged with every row (docs/msol.md, "Option diversity").

Options collapse when their features stop differing (``features/option_gap`` → 0), when the ReLUs of the option
layer die so that a few units carry the option identity (``features/alive_units`` → 0), or when the masters do not
come to prefer an option by task (``master/task_spread`` stays near 0).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from msol.soft_options.networks import HierarchicalPolicy


@torch.no_grad()
def option_layer_stats(policy: HierarchicalPolicy, obs: torch.Tensor, slot: torch.Tensor,
                       slot_tasks: list[str]) -> dict[str, float]:
    """Diagnostics of the (posterior) option layer and the masters on a batch of observations.

    * ``features/alive_units``: share of option-layer units that are positive for at least one (row, option).
    * ``features/option_gap``: mean over rows of the mean pairwise distance between the options' features
      ``f(h, z)``, divided by their mean norm (0: every option sees the same features; needs 2+ options).
    * ``master/task_spread``: over options, the largest difference between two tasks' mean master probability of
      that option (Moving Bandits: ``|p(z=0 | goal0) − p(z=0 | goal1)|``; 0: the masters ignore the task).
    """
    trunk = policy.trunk(obs)
    m = policy.num_options
    f = F.relu(trunk.pre.unsqueeze(1) + trunk.table[0, :m].unsqueeze(0))  # [B, m, F] (a population of one)
    stats = {"features/alive_units": (f > 0).flatten(0, 1).any(0).float().mean().item()}
    if m < 2:
        return stats
    pairs = torch.cdist(f, f)  # [B, m, m]
    mean_pair = pairs.sum((1, 2)) / (m * (m - 1))
    mean_norm = f.norm(dim=-1).mean(-1).clamp_min(1e-12)
    stats["features/option_gap"] = (mean_pair / mean_norm).mean().item()
    probs = policy.master_logits(trunk, slot).softmax(-1)[:, :m]
    row_tasks = [slot_tasks[s] for s in slot.tolist()]
    names = sorted(set(row_tasks))
    task = torch.tensor([names.index(t) for t in row_tasks], device=slot.device)
    counts = torch.bincount(task, minlength=len(names)).clamp_min(1).unsqueeze(1).to(probs.dtype)
    by_task = probs.new_zeros(len(names), m).index_add_(0, task, probs) / counts
    stats["master/task_spread"] = (by_task.max(0).values - by_task.min(0).values).max().item()
    return stats
