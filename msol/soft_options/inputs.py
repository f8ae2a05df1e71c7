"""What the networks read: the env observation, optionally with the previous action (DISTRAL(+action))."""

from __future__ import annotations

import torch


def policy_input(obs: torch.Tensor, prev_action: torch.Tensor | None, num_actions: int) -> torch.Tensor:
    """``obs`` alone, or ``[obs, onehot(a_{t-1})]`` when ``prev_action`` is given (−1 = episode start: all zeros).

    The authors' code appends the previous action as a raw scalar; a one-hot does not impose an order on actions
    (docs/spec/baselines.md, **choice**).
    """
    if prev_action is None:
        return obs
    onehot = obs.new_zeros(obs.shape[0], num_actions)
    valid = prev_action >= 0
    onehot[valid, prev_action[valid]] = 1.0
    return torch.cat([obs, onehot], dim=-1)
