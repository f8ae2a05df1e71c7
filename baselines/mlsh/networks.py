"""MLSH's networks: per-task masters and shared sub-policies, each a small tanh MLP with policy and value heads.

``SlotMLP`` is a stack of ``msol.common.layers.SlotLinear`` layers: ``n`` independent MLPs per population member
evaluated in one forward, row ``b`` going through network ``index[b]`` of its member (rows come in equal
member-major blocks, ``msol.common.population``). The masters are one ``SlotMLP`` indexed by task slot; the sub-policies
are one ``SlotMLP`` indexed by sub-policy, so every env of every slot of every member acts in a single forward.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Categorical

from msol.common.layers import Generators, SlotLinear, load_member_state, member_module


class SlotMLP(nn.Module):
    """``n`` tanh MLPs ``in_dim → hidden … → out_dim`` with one set of weights per index and member."""

    def __init__(self, n: int, in_dim: int, hidden: Sequence[int], out_dim: int, out_scale: float = 1.0,
                 generators: Generators = (None,)) -> None:
        super().__init__()
        widths = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(SlotLinear(n, a, b, generators=generators) for a, b in itertools.pairwise(widths))
        self.out_scale = out_scale
        with torch.no_grad():
            self.layers[-1].weight.mul_(out_scale)

    def forward(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(x, index))
        return self.layers[-1](x, index)

    def grouped(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[S, n, w, in_dim]`` with block ``(k, i)`` for network ``i`` of member ``k`` -> ``[S, n, w, out]``."""
        for layer in self.layers[:-1]:
            x = torch.tanh(layer.grouped(x))
        return self.layers[-1].grouped(x)

    @torch.no_grad()
    def reset(self, i: int, generators: Generators = (None,)) -> None:
        """Re-initialise network ``i`` of every member (member ``k``'s from ``generators[k]``); a small output layer
        keeps a fresh policy near uniform (as pposgd does)."""
        for layer in self.layers:
            layer.reset_slot(i, generators)
        self.layers[-1].weight[:, :, i].mul_(self.out_scale)


class MLSHPolicy(nn.Module):
    """``num_slots`` masters ``π_φi(z|s)``, ``V_φi(s)`` and ``num_subs`` shared sub-policies ``π_θz(a|s)``, ``V_θz(s)``,
    for each member of a population (``generators``: one per member).

    As in the MLSH code (pposgd's MlpPolicy) policy and value are separate MLPs; the sub-policies' values are
    shared across tasks like the sub-policies themselves.
    """

    def __init__(self, obs_dim: int, action_dim: int, *, num_slots: int, num_subs: int, hidden: Sequence[int],
                 generators: Generators = (None,)) -> None:
        super().__init__()
        self.num_slots, self.num_subs, self.action_dim = num_slots, num_subs, action_dim
        self.master_pi = SlotMLP(num_slots, obs_dim, hidden, num_subs, out_scale=0.01, generators=generators)
        self.master_v = SlotMLP(num_slots, obs_dim, hidden, 1, generators=generators)
        self.sub_pi = SlotMLP(num_subs, obs_dim, hidden, action_dim, out_scale=0.01, generators=generators)
        self.sub_v = SlotMLP(num_subs, obs_dim, hidden, 1, generators=generators)

    @property
    def members(self) -> int:
        return self.master_pi.layers[0].members

    @property
    def device(self) -> torch.device:
        return self.master_pi.layers[0].weight.device

    def member(self, index: int) -> MLSHPolicy:
        """A population-of-one copy of member ``index``: what evaluation, figures and the probe use."""
        return member_module(self, index)

    def load_member(self, index: int, state: dict[str, torch.Tensor]) -> None:
        """Set member ``index`` from the ``state_dict`` of a population of one (a single run's checkpoint)."""
        load_member_state(self, index, state)

    def master_parameters(self) -> list[nn.Parameter]:
        return [*self.master_pi.parameters(), *self.master_v.parameters()]

    def sub_parameters(self) -> list[nn.Parameter]:
        return [*self.sub_pi.parameters(), *self.sub_v.parameters()]

    @torch.no_grad()
    def reset_master(self, slot: int, generators: Generators = (None,)) -> None:
        """A new task for ``slot`` (of every member): its master (policy and value) starts from scratch."""
        self.master_pi.reset(slot, generators)
        self.master_v.reset(slot, generators)

    def master(self, obs: torch.Tensor, slot: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        return Categorical(logits=self.master_pi(obs, slot), validate_args=False), self.master_v(obs, slot).squeeze(-1)

    def sub(self, obs: torch.Tensor, z: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        return Categorical(logits=self.sub_pi(obs, z), validate_args=False), self.sub_v(obs, z).squeeze(-1)

    def master_grouped(self, obs: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        """:meth:`master` for observations grouped by slot, ``[S, num_slots, w, obs_dim]``: each block computes its
        own master only (``SlotMLP.grouped``)."""
        return Categorical(logits=self.master_pi.grouped(obs), validate_args=False), self.master_v.grouped(obs).squeeze(-1)

    def sub_grouped(self, obs: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        """:meth:`sub` for observations grouped by sub-policy, ``[S, num_subs, w, obs_dim]``."""
        return Categorical(logits=self.sub_pi.grouped(obs), validate_args=False), self.sub_v.grouped(obs).squeeze(-1)
