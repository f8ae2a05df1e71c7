"""Layers with a population-member dimension (and, for :class:`SlotLinear`, a task-slot dimension), shared by every
torch learner: one matmul serves all members (and all task slots) of a population.

Rows come in ``S`` equal member-major blocks: row ``r`` belongs to member ``r // (B / S)``. A single run is a
population of one.

* ``MemberLinear``: an ``nn.Linear`` per population member, all members in one batched matmul.
* ``SlotLinear``: one linear head per (member, task slot) evaluated for all slots in ONE matmul, then each row picks
  its own slot's output — a single forward pass serves every task of every member, with no Python loop.
"""

from __future__ import annotations

import copy
import functools

import torch
from torch import nn
from torch.nn import functional as F

Generators = "list[torch.Generator | None]"  # one per member; None: torch's global generator


def orthogonal(rows: int, cols: int, gain: float, generator: torch.Generator | None) -> torch.Tensor:
    """An orthogonal ``[rows, cols]`` matrix scaled by ``gain``, drawn from ``generator`` on the CPU (the members'
    generators are CPU generators, ``msol.common.device``); copying it into a layer moves it to the layer's device."""
    return nn.init.orthogonal_(torch.empty(rows, cols, device="cpu"), gain, generator=generator)


@functools.lru_cache(maxsize=64)
def member_rows(members: int, rows: int, device: torch.device) -> torch.Tensor:
    """The member of each of ``rows`` rows (``members`` equal member-major blocks); cached, never written to."""
    return torch.arange(members, device=device).repeat_interleave(rows // members)


class MemberLinear(nn.Module):
    """``nn.Linear`` per population member: ``weight`` ``[S, out, in]``, ``bias`` ``[S, out]``; rows member-major.

    Orthogonal weights with ``gain`` and zero biases (docs/spec/msol.md, "Initialisation"), each member's drawn from its
    own generator, so member ``k`` of a population starts exactly like a single run of its seed.
    """

    def __init__(self, in_features: int, out_features: int, gain: float, generators: Generators) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.stack([orthogonal(out_features, in_features, gain, g) for g in generators]))
        self.bias = nn.Parameter(torch.zeros(len(generators), out_features, device=self.weight.device))

    @property
    def members(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return member_linear(x, self.weight, self.bias)


def member_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x W_k^T + b_k`` for the rows of each member ``k`` (``weight`` ``[S, out, in]``, ``bias`` ``[S, out]``)."""
    members = weight.shape[0]
    if members == 1:
        return F.linear(x, weight[0], bias[0])
    out = torch.baddbmm(bias.unsqueeze(1), x.view(members, -1, x.shape[-1]), weight.transpose(1, 2))
    return out.view(x.shape[0], -1)


class SlotLinear(nn.Module):
    """A linear layer per (member, task slot); ``forward(x, slot)`` applies row ``b``'s own slot's weights.

    ``weight`` is stored ``[S, in, slots, out]`` (slot on dim :attr:`WEIGHT_SLOT_DIM`, ``bias`` ``[S, slots, out]``)
    so that all slots' weights of a member are one ``[in, slots·out]`` matrix without a copy.
    """

    WEIGHT_SLOT_DIM = 2
    BIAS_SLOT_DIM = 1

    def __init__(self, num_slots: int, in_features: int, out_features: int, gain: float = 1.0,
                 generators: Generators = (None,)) -> None:
        super().__init__()
        self.num_slots, self.in_features, self.out_features = num_slots, in_features, out_features
        self.gain = gain
        members = len(generators)
        self.weight = nn.Parameter(torch.empty(members, in_features, num_slots, out_features, device="cpu"))
        self.bias = nn.Parameter(torch.empty(members, num_slots, out_features, device="cpu"))
        for slot in range(num_slots):
            self.reset_slot(slot, generators)

    @property
    def members(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        # All slots in one matmul per member ([B, in] @ [in, n*out] + bias), then gather each row's slot: cheaper
        # than a bmm over per-row weight copies for the small heads used here, and it keeps autograd simple.
        members, width = self.members, self.num_slots * self.out_features
        weight = self.weight.view(members, self.in_features, width).transpose(1, 2)  # [S, n*out, in], no copy
        out = member_linear(x, weight, self.bias.view(members, width)).view(x.shape[0], self.num_slots,
                                                                              self.out_features)
        return out.gather(1, slot.view(-1, 1, 1).expand(-1, 1, self.out_features)).squeeze(1)

    def grouped(self, x: torch.Tensor) -> torch.Tensor:
        """Rows already grouped by slot: ``x`` ``[S, slots, w, in]`` -> ``[S, slots, w, out]``, block ``(k, i)``
        through member ``k``'s slot ``i`` only (one batched matmul; no other slot's output is computed, which
        :meth:`forward` does and which dominates when every layer is per slot, as in MLSH's networks)."""
        members, slots, width = x.shape[:3]
        weight = self.weight.transpose(1, 2).reshape(members * slots, self.in_features, self.out_features)
        out = torch.baddbmm(self.bias.reshape(members * slots, 1, self.out_features),
                            x.reshape(members * slots, width, self.in_features), weight)
        return out.view(members, slots, width, self.out_features)

    def slot_weight(self, slot: int, member: int = 0) -> torch.Tensor:
        """Member ``member``'s ``[in, out]`` weight of slot ``slot`` (a view)."""
        return self.weight[member, :, slot]

    @torch.no_grad()
    def reset_slot(self, slot: int, generators: Generators = (None,)) -> None:
        """Re-initialise one slot of every member: orthogonal weights with this head's gain (member ``k``'s drawn from
        ``generators[k]``), zero bias."""
        if len(generators) != self.members:
            raise ValueError(f"{len(generators)} generators for {self.members} members")
        for member, generator in enumerate(generators):
            self.slot_weight(slot, member).copy_(orthogonal(self.out_features, self.in_features, self.gain,
                                                            generator).t())
        self.bias[:, slot].zero_()

    @torch.no_grad()
    def copy_into_slot(self, slot: int, source: MemberLinear) -> None:
        """Set one slot's weights to those of a shared layer, member by member (posterior <- prior)."""
        self.weight[:, :, slot].copy_(source.weight.transpose(1, 2))
        self.bias[:, slot].copy_(source.bias)


def _member_param(param: nn.Parameter, index: int) -> nn.Parameter:
    return nn.Parameter(param.detach()[index:index + 1].clone(), requires_grad=param.requires_grad)


def member_module(module: nn.Module, index: int) -> nn.Module:
    """A copy of ``module`` whose parameters are member ``index``'s only (modules without parameters are shared):
    a population of one, what evaluation, figures and probes of one member use."""
    if not any(True for _ in module.parameters()):
        return module
    single = copy.copy(module)
    single._parameters = {n: None if p is None else _member_param(p, index) for n, p in module._parameters.items()}
    single._modules = {n: None if m is None else member_module(m, index) for n, m in module._modules.items()}
    single._buffers = dict(module._buffers)
    return single


@torch.no_grad()
def load_member_state(module: nn.Module, index: int, state: dict[str, torch.Tensor]) -> None:
    """Set member ``index`` of ``module`` (every tensor has the member on dim 0) from the ``state_dict`` of a
    population of one."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise KeyError(f"member state lacks {', '.join(missing)}")
    for name, value in own.items():
        value[index].copy_(state[name][0])
