"""MLSH's schedule, macro-level advantages and PPO losses (spec/baselines.md "MLSH").

Tensors are time-major ``[T, B]`` (rollout steps × envs). ``decide[t, e] = 1`` where env ``e``'s master picked a
sub-policy at step ``t`` (every N steps, at episode starts, and at the first step of every rollout); a macro step
runs from one decision to the step before the next one, or to the end of its episode.
"""

from __future__ import annotations

import torch


# ---------------------------------------------------------------------------------------------------- schedule
def slot_offsets(num_slots: int, cycle: int, stagger: bool) -> list[int]:
    """Iteration offset of each slot's task cycle.

    The MLSH code starts worker ``rank`` with ``rank % 10`` extra warm-up iterations (cycle 10), so that at any
    time some workers are in their joint phase and the sub-policies are updated every iteration; ``stagger``
    spreads the slots over one cycle the same way. Without it, all slots share one schedule.
    """
    return [slot * cycle // num_slots if stagger else 0 for slot in range(num_slots)]


def schedule(iteration: int, offset: int, warmup: int, joint: int) -> tuple[bool, bool]:
    """``(new_task, joint)`` of a slot at ``iteration`` (0-based) of the option-learning phase.

    A cycle is ``warmup`` iterations updating only the master, then ``joint`` iterations updating master and
    sub-policies; ``new_task`` means the slot draws a task and re-initialises its master before this iteration.
    Slot ``offset`` k makes the first cycle k iterations longer (extra warm-up), as the MLSH code does per worker.
    """
    position = iteration - offset  # < 0 only during the first, lengthened warm-up
    cycle = warmup + joint
    new_task = position > 0 and position % cycle == 0
    return new_task, position >= 0 and position % cycle >= warmup


# ---------------------------------------------------------------------------------------------------- advantages
def macro_gae(
    reward: torch.Tensor, decide: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
    master_value: torch.Tensor, master_bootstrap: torch.Tensor, last_value: torch.Tensor, gamma: float, lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over macro steps: ``(advantage, macro_reward)``, both ``[T, B]`` and valid where ``decide``.

    The master's reward for a macro step is the undiscounted sum of its primitive rewards (MLSH); ``γ`` and ``λ``
    apply once per macro step. ``master_value[t]`` is ``V_φ(s_t)`` at decision steps; the value after a macro step
    is the next decision's, 0 after a termination, ``master_bootstrap[t] = V_φ(final obs)`` after a time-limit cut,
    and ``last_value = V_φ(s_T)`` after the rollout (the next rollout decides at ``s_T``).
    """
    adv = torch.zeros_like(reward)
    macro_reward = torch.zeros_like(reward)
    next_value, next_adv = last_value.clone(), torch.zeros_like(last_value)
    acc = torch.zeros_like(last_value)  # primitive rewards from t to the end of t's macro step
    for t in reversed(range(reward.shape[0])):
        ended = (terminated[t] + truncated[t]) > 0
        next_value = torch.where(terminated[t] > 0, torch.zeros_like(next_value),
                                 torch.where(truncated[t] > 0, master_bootstrap[t], next_value))
        next_adv = torch.where(ended, torch.zeros_like(next_adv), next_adv)
        acc = torch.where(ended, torch.zeros_like(acc), acc) + reward[t]
        here = decide[t] > 0
        delta = acc + gamma * next_value - master_value[t]
        a = delta + gamma * lam * next_adv
        adv[t] = torch.where(here, a, adv[t])
        macro_reward[t] = torch.where(here, acc, macro_reward[t])
        next_value = torch.where(here, master_value[t], next_value)
        next_adv = torch.where(here, a, next_adv)
        acc = torch.where(here, torch.zeros_like(acc), acc)
    return adv, macro_reward


def normalize_per_group(x: torch.Tensor, group: torch.Tensor, num_groups: int) -> torch.Tensor:
    """``(x − mean_g) / std_g`` within each group (a master's own data; one sub-policy's data), as MLSH does."""
    out = torch.zeros_like(x)
    for g in range(num_groups):
        rows = group == g
        if rows.any():
            values = x[rows]
            std = values.std(unbiased=False) if values.numel() > 1 else values.new_tensor(0.0)
            out[rows] = (values - values.mean()) / std.clamp_min(1e-6)
    return out


# ---------------------------------------------------------------------------------------------------- PPO
def ppo_terms(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, value: torch.Tensor, old_value: torch.Tensor,
    returns: torch.Tensor, clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row clipped surrogate and clipped value loss of pposgd (MLSH's PPO; no entropy bonus)."""
    ratio = (logp - old_logp).exp()
    L_pi = -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv)
    value_clipped = old_value + (value - old_value).clamp(-clip, clip)
    L_V = 0.5 * torch.max((value - returns).pow(2), (value_clipped - returns).pow(2))
    return L_pi, L_V


def group_mean(x: torch.Tensor, group: torch.Tensor, num_groups: int) -> torch.Tensor:
    """``Σ_g mean_{rows of g} x``: independent learners (one per group) trained by one backward pass."""
    sums = torch.zeros(num_groups, dtype=x.dtype).index_add(0, group, x)
    counts = torch.bincount(group, minlength=num_groups).clamp_min(1).to(x.dtype)
    return (sums / counts).sum()


def group_minibatches(group: torch.Tensor, num_groups: int, *, batch_size: int | None = None,
                      num_batches: int | None = None) -> list[torch.Tensor]:
    """Shuffled minibatches in which every group contributes its own minibatch of its own rows.

    Each group's rows are permuted and cut into chunks of ``batch_size`` (masters: 64) or into ``num_batches``
    equal chunks (sub-policies: 15); minibatch ``k`` holds chunk ``k`` of every group, so each learner makes the
    same number of steps on its own data as it would alone.
    """
    if (batch_size is None) == (num_batches is None):
        raise ValueError("give exactly one of batch_size, num_batches")
    chunks: list[list[torch.Tensor]] = []
    for g in range(num_groups):
        rows = torch.nonzero(group == g).squeeze(-1)
        if rows.numel() == 0:
            continue
        rows = rows[torch.randperm(rows.numel())]
        parts = rows.split(batch_size) if batch_size is not None else rows.tensor_split(min(num_batches, rows.numel()))
        chunks.append(list(parts))
    depth = max((len(c) for c in chunks), default=0)
    return [torch.cat([c[k] for c in chunks if k < len(c)]) for k in range(depth)]
