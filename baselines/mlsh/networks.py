"""MLSH's networks: per-task masters and shared sub-policies, each a small tanh MLP with policy and value heads.

``SlotMLP`` is a stack of ``msol.networks.SlotLinear`` layers: ``n`` independent MLPs evaluated in one forward,
row ``b`` going through network ``index[b]``. The masters are one ``SlotMLP`` indexed by task slot; the
sub-policies are one ``SlotMLP`` indexed by sub-policy, so every env of every slot acts in a single forward.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Categorical

from msol.networks import SlotLinear


class SlotMLP(nn.Module):
    """``n`` tanh MLPs ``in_dim → hidden … → out_dim`` with one set of weights per index."""

    def __init__(self, n: int, in_dim: int, hidden: Sequence[int], out_dim: int, out_scale: float = 1.0) -> None:
        super().__init__()
        widths = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(SlotLinear(n, a, b) for a, b in itertools.pairwise(widths))
        self.out_scale = out_scale
        for i in range(n):
            self.reset(i)

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x, index))
        return self.layers[-1](x, index)

    @torch.no_grad()
    def reset(self, i: int) -> None:
        """Re-initialise network ``i``; a small output layer keeps a fresh policy near uniform (as pposgd does)."""
        for layer in self.layers:
            layer.reset_slot(i)
        self.layers[-1].slot_weight(i).mul_(self.out_scale)
        self.layers[-1].bias[:, i].zero_()


class MLSHPolicy(nn.Module):
    """``num_slots`` masters ``π_φi(z|s)``, ``V_φi(s)`` and ``num_subs`` shared sub-policies ``π_θz(a|s)``, ``V_θz(s)``.

    As in the MLSH code (pposgd's MlpPolicy) policy and value are separate MLPs; the sub-policies' values are
    shared across tasks like the sub-policies themselves.
    """

    def __init__(self, obs_dim: int, action_dim: int, *, num_slots: int, num_subs: int, hidden: Sequence[int]
                 ) -> None:
        super().__init__()
        self.num_slots, self.num_subs, self.action_dim = num_slots, num_subs, action_dim
        self.master_pi = SlotMLP(num_slots, obs_dim, hidden, num_subs, out_scale=0.01)
        self.master_v = SlotMLP(num_slots, obs_dim, hidden, 1)
        self.sub_pi = SlotMLP(num_subs, obs_dim, hidden, action_dim, out_scale=0.01)
        self.sub_v = SlotMLP(num_subs, obs_dim, hidden, 1)

    def master_parameters(self) -> list[nn.Parameter]:
        return [*self.master_pi.parameters(), *self.master_v.parameters()]

    def sub_parameters(self) -> list[nn.Parameter]:
        return [*self.sub_pi.parameters(), *self.sub_v.parameters()]

    @torch.no_grad()
    def reset_master(self, slot: int) -> None:
        """A new task for ``slot``: its master (policy and value) starts from scratch."""
        self.master_pi.reset(slot)
        self.master_v.reset(slot)

    def master(self, obs: torch.Tensor, slot: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        return Categorical(logits=self.master_pi(obs, slot)), self.master_v(obs, slot).squeeze(-1)

    def sub(self, obs: torch.Tensor, z: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        return Categorical(logits=self.sub_pi(obs, z)), self.sub_v(obs, z).squeeze(-1)
