"""The A2OC network: one shared trunk on (observation, task one-hot) with Q, intra-option and termination heads.

There is no information asymmetry: the task id reaches every head, options included (docs/spec/baselines.md). The task
one-hot spans every task of the env family, so task ids keep their meaning from option learning to transfer; the
input weights of a task never trained on stay at their initial values until transfer trains them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class OptionHeads:
    """Every head at a batch of states: ``q`` ``[B, m]``, intra-option ``logits`` ``[B, m, A]``, ``beta`` ``[B, m]``."""

    q: torch.Tensor
    logits: torch.Tensor
    beta: torch.Tensor

    def rows(self, index: slice | torch.Tensor) -> OptionHeads:
        return OptionHeads(self.q[index], self.logits[index], self.beta[index])

    def at(self, option: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Q(s,o), π logits(·|s,o), β(s,o))`` of one option per row."""
        rows = torch.arange(option.shape[0], device=option.device)
        return self.q[rows, option], self.logits[rows, option], self.beta[rows, option]


class OptionCriticNetwork(nn.Module):
    """``Q(s,o)``, ``π(a|s,o)`` and ``β(s,o) = sigmoid(·)`` on one ReLU trunk of ``[obs, onehot(task)]``."""

    def __init__(self, obs_dim: int, num_tasks: int, action_dim: int, *, num_options: int, hidden: Sequence[int]
                 ) -> None:
        super().__init__()
        self.num_tasks, self.num_options, self.action_dim = num_tasks, num_options, action_dim
        layers: list[nn.Module] = []
        width = obs_dim + num_tasks
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.q = nn.Linear(width, num_options)
        self.intra = nn.Linear(width, num_options * action_dim)
        self.termination = nn.Linear(width, num_options)

    def forward(self, obs: torch.Tensor, task: torch.Tensor) -> OptionHeads:
        h = self.trunk(torch.cat([obs, F.one_hot(task, self.num_tasks).to(obs.dtype)], dim=-1))
        logits = self.intra(h).view(-1, self.num_options, self.action_dim)
        return OptionHeads(self.q(h), logits, torch.sigmoid(self.termination(h)))
