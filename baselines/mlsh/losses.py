"""MLSH's schedule, macro-level advantages and PPO losses (docs/spec/baselines.md "MLSH").

Tensors are time-major ``[T, B]`` (rollout steps × envs). ``decide[t, e] = 1`` where env ``e``'s master picked a
sub-policy at step ``t`` (every N steps, at episode starts, and at the first step of every rollout); a macro step
runs from one decision to the step before the next one, or to the end of its episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    counts = torch.bincount(group, minlength=num_groups).clamp_min(1).to(x.dtype)
    mean = x.new_zeros(num_groups).index_add(0, group, x) / counts
    centred = x - mean[group]
    var = x.new_zeros(num_groups).index_add(0, group, centred * centred) / counts
    return centred / var.sqrt().clamp_min(1e-6)[group]


# ---------------------------------------------------------------------------------------------------- PPO
MAX_LOG_RATIO = 20.0  # exp(20) ≈ 4.9e8: far beyond any ratio PPO's clipping lets matter, far below float32's limit
def ppo_terms(
    logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, value: torch.Tensor, old_value: torch.Tensor,
    returns: torch.Tensor, clip: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row clipped surrogate and clipped value loss of pposgd (MLSH's PPO; no entropy bonus).

    The log-ratio is capped at :data:`MAX_LOG_RATIO` before ``exp``: a sub-policy forced by ``random_sub_prob`` can
    have a master log-probability near −130, and after one update ``exp(new − old)`` overflows float32; the ``inf``
    then turns the backward pass of ``min`` into NaN (seen on Taxi at 640k frames per task). Below the cap nothing
    changes; above it the row gives no gradient (its clipped term is chosen anyway when the advantage is positive).
    """
    ratio = (logp - old_logp).clamp(max=MAX_LOG_RATIO).exp()
    L_pi = -torch.min(ratio * adv, ratio.clamp(1.0 - clip, 1.0 + clip) * adv)
    value_clipped = old_value + (value - old_value).clamp(-clip, clip)
    L_V = 0.5 * torch.max((value - returns).pow(2), (value_clipped - returns).pow(2))
    return L_pi, L_V


def group_mean(x: torch.Tensor, group: torch.Tensor, num_groups: int, weight: torch.Tensor | None = None
               ) -> torch.Tensor:
    """``Σ_g mean_{rows of g} x``: independent learners (one per group) trained by one backward pass. ``weight``
    (0/1) leaves out padding rows."""
    w = torch.ones_like(x) if weight is None else weight.to(x.dtype)
    sums = x.new_zeros(num_groups).index_add(0, group, x * w)
    counts = x.new_zeros(num_groups).index_add(0, group, w).clamp_min(1)
    return (sums / counts).sum()


@dataclass
class Minibatch:
    """Rows of one minibatch laid out ``[S, G, width]`` (member, group, padded row; flattened), so that each block
    goes through its own group's network (``SlotMLP.grouped``): ``rows`` index the update's data, ``valid`` is 0 on
    padding rows, ``active[k]`` says member ``k`` has rows (a member without any does not step)."""

    rows: torch.Tensor
    valid: torch.Tensor
    active: torch.Tensor
    width: int

    def group_of_rows(self, members: int, num_groups: int) -> torch.Tensor:
        """``member · num_groups + group`` of every row of the layout."""
        return torch.arange(members * num_groups, device=self.rows.device).repeat_interleave(self.width)


def group_rows(member: torch.Tensor, group: torch.Tensor, members: int, num_groups: int) -> list[list[torch.Tensor]]:
    """``[k][g]``: the data rows of member ``k``'s group ``g`` (its master of slot ``g``; its sub-policy ``g``)."""
    key = member * num_groups + group
    order = torch.argsort(key, stable=True)
    pieces = list(order.split(torch.bincount(key, minlength=members * num_groups).tolist()))
    return [pieces[k * num_groups:(k + 1) * num_groups] for k in range(members)]


def member_minibatches(rows_of: list[list[torch.Tensor]], generators: Sequence[torch.Generator | None], *,
                       batch_size: int | None = None, num_batches: int | None = None) -> list[Minibatch]:
    """One epoch of shuffled minibatches in which every group of every member contributes its own minibatch of its
    own rows.

    Each group's rows are permuted (member ``k``'s from ``generators[k]``) and cut into chunks of ``batch_size``
    (masters: 64) or into ``num_batches`` equal chunks (sub-policies: 15); minibatch ``j`` holds chunk ``j`` of every
    group, so each learner makes the same number of steps on its own data as it would alone. A member with fewer
    minibatches than another sits out the last ones (``active``). The permutations are drawn on the CPU, where the
    generators are; the minibatches are on the device of ``rows_of``.
    """
    if (batch_size is None) == (num_batches is None):
        raise ValueError("give exactly one of batch_size, num_batches")
    members, num_groups, device = len(rows_of), len(rows_of[0]), rows_of[0][0].device
    chunks: list[list[tuple[torch.Tensor, ...]]] = []
    for groups, generator in zip(rows_of, generators, strict=True):
        chunks.append([])
        for rows in groups:
            if rows.numel():
                rows = rows[torch.randperm(rows.numel(), generator=generator, device="cpu").to(rows.device)]
            chunks[-1].append(() if rows.numel() == 0 else rows.split(batch_size) if batch_size is not None
                              else rows.tensor_split(min(num_batches, rows.numel())))
    batches = []
    for j in range(max(len(c) for member in chunks for c in member)):
        pieces = [[c[j] if j < len(c) else None for c in member] for member in chunks]
        width = max(p.numel() for member in pieces for p in member if p is not None)
        rows = torch.zeros(members, num_groups, width, dtype=torch.long, device=device)
        valid = torch.zeros(members, num_groups, width, dtype=torch.bool, device=device)
        for k, member in enumerate(pieces):
            for g, piece in enumerate(member):
                if piece is not None:
                    rows[k, g, :piece.numel()], valid[k, g, :piece.numel()] = piece, True
        batches.append(Minibatch(rows.flatten(), valid.flatten(), valid.flatten(1).any(1), width))
    return batches
