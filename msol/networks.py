"""Networks of the hierarchical policy (spec/msol.md, "Architecture").

Shapes: ``B`` rows (all envs of all task slots of all population members at once), ``S`` members, ``n`` task slots,
``m`` options, ``A`` actions. Rows come in ``S`` equal member-major blocks: row ``r`` belongs to member
``r // (B / S)``. A single run is a population of one.

* ``OptionEncoder``: obs -> trunk features ``h`` (the listed hidden layers) and, for an option ``z``,
  ``f(h, z) = ReLU(W [h, Linear(onehot z)])`` of width ``encoder_output_size`` (what the heads see; the master
  reads ``f(h, 0)`` as in the authors' code, or ``h``). One encoder serves every task slot, priors and posteriors
  alike during option learning.
* ``MemberLinear``: an ``nn.Linear`` per population member, all members in one batched matmul.
* ``SlotLinear``: one linear head per (member, task slot) evaluated for all slots in ONE matmul, then each row picks
  its own slot's output — a single forward pass serves every task of every member, with no Python loop.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

_NEVER = -1e9  # a logit for "impossible" that keeps log-probabilities finite

# Argument validation of torch.distributions costs more than the small heads themselves; inputs here are ours.
torch.distributions.Distribution.set_default_validate_args(False)


# Orthogonal initialisation with zero biases (spec/msol.md, "Initialisation"): ReLU layers with gain √2, every
# policy head with 0.01 so that every policy, and every master a slot reset re-creates, starts uniform.
ENCODER_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0
EMBEDDING_GAIN = 1.0


Generators = "list[torch.Generator | None]"  # one per member; None: torch's global generator


def orthogonal(rows: int, cols: int, gain: float, generator: torch.Generator | None) -> torch.Tensor:
    """An orthogonal ``[rows, cols]`` matrix scaled by ``gain``, drawn from ``generator``."""
    return nn.init.orthogonal_(torch.empty(rows, cols), gain, generator=generator)


@functools.lru_cache(maxsize=64)
def member_rows(members: int, rows: int) -> torch.Tensor:
    """The member of each of ``rows`` rows (``members`` equal member-major blocks); cached, never written to."""
    return torch.arange(members).repeat_interleave(rows // members)


class MemberLinear(nn.Module):
    """``nn.Linear`` per population member: ``weight`` ``[S, out, in]``, ``bias`` ``[S, out]``; rows member-major.

    Orthogonal weights with ``gain`` and zero biases (spec/msol.md, "Initialisation"), each member's drawn from its
    own generator, so member ``k`` of a population starts exactly like a single run of its seed.
    """

    def __init__(self, in_features: int, out_features: int, gain: float, generators: Generators) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.stack([orthogonal(out_features, in_features, gain, g) for g in generators]))
        self.bias = nn.Parameter(torch.zeros(len(generators), out_features))

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


class OptionEncoder(nn.Module):
    """Shared feature extractor: the trunk (``hidden``), then the option layer fed with the option's embedding."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], num_options: int, option_embedding: int,
                 output_size: int, generators: Generators) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for size in hidden:
            layers += [MemberLinear(width, size, ENCODER_GAIN, generators), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.trunk_dim = width
        self.num_options = num_options
        # Orthogonal with gain 1 on a one-hot input: each embedding has unit norm (entries ≈ 1/√128), small next to
        # the trunk features, so a fresh network's option features follow the state (docs/msol.md).
        self.option_embed = MemberLinear(num_options, option_embedding, EMBEDDING_GAIN, generators)
        self.option_layer = MemberLinear(width + option_embedding, output_size, ENCODER_GAIN, generators)
        self.feature_dim = output_size

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.trunk(obs)

    def option_input(self, h: torch.Tensor) -> torch.Tensor:
        """The state part of the option layer, ``W_h h + b``: the same for every option, so computed once."""
        return member_linear(h, self.option_layer.weight[:, :, : self.trunk_dim], self.option_layer.bias)

    def option_table(self) -> torch.Tensor:
        """The option part of the option layer for each member and option index, ``[S, m + 1, F]``.

        ``W_z Embed(onehot z)`` only depends on ``z``, so ``f(h, z) = ReLU(W_h h + b + table[z])`` equals the
        concatenation form exactly while costing one add per row instead of a wide matmul per option.
        Row ``m`` is for primitive actions offered to the master: no one-hot, only the embedding's bias.
        """
        weight = self.option_embed.weight.transpose(1, 2)  # [S, m, E]: the embedding of each one-hot
        embed = torch.cat([weight, weight.new_zeros(weight.shape[0], 1, weight.shape[2])], dim=1)
        embed = embed + self.option_embed.bias.unsqueeze(1)
        return torch.bmm(embed, self.option_layer.weight[:, :, self.trunk_dim:].transpose(1, 2))


def option_features(pre: torch.Tensor, table: torch.Tensor, option: torch.Tensor) -> torch.Tensor:
    """``f(h, z) = ReLU(pre + table[k, z])`` for each row's member ``k``; indices beyond the options (primitives)
    share the last row."""
    members, entries = table.shape[0], table.shape[1]
    index = option.clamp(max=entries - 1)
    if members == 1:
        return F.relu(pre + table[0][index])
    index = index + member_rows(members, option.shape[0]) * entries
    return F.relu(pre + table.flatten(0, 1)[index])


class Trunk(NamedTuple):
    """Everything the heads need from one batch of observations, computed once per forward.

    ``prior`` holds the same for the frozen prior encoder after transfer (``None`` while they share one).
    """

    h: torch.Tensor       # trunk features
    pre: torch.Tensor     # W_h h + b of the option layer
    table: torch.Tensor   # [S, m + 1, F] option part of the option layer
    prior: Trunk | None = None
    control: Trunk | None = None  # after transfer: the fresh encoder that master and value read

    @classmethod
    def of(cls, encoder: OptionEncoder, obs: torch.Tensor, prior: Trunk | None = None,
           control: Trunk | None = None) -> Trunk:
        h = encoder.features(obs)
        return cls(h, encoder.option_input(h), encoder.option_table(), prior, control)

    @property
    def of_control(self) -> Trunk:
        """The features master and value read: their own encoder's after transfer, the shared one before."""
        return self if self.control is None else self.control


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
        self.weight = nn.Parameter(torch.empty(members, in_features, num_slots, out_features))
        self.bias = nn.Parameter(torch.empty(members, num_slots, out_features))
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


class HierarchicalPolicy(nn.Module):
    """Posterior heads per task slot and shared prior heads, on one (or, after transfer, three) encoders.

    Heads (one linear layer each, spec/msol.md):

    ========================  =======================  ======================
    head                      input features           per slot / shared
    ========================  =======================  ======================
    master ``q^H``            ``f(h, 0)`` (or ``h``)   per slot
    termination ``q^T``       ``f(h, z_{t-1})``        per slot
    value ``V``               ``f(h, z_{t-1})``        per slot
    intra-option ``q^L``      ``f(h, z_t)``            per slot
    prior ``p^L_θ``           ``f(h, z_t)``            shared
    prior ``p^T_θ``           ``f(h, z_{t-1})``        shared (learned, used after transfer)
    ========================  =======================  ======================

    ``master_input="option0"`` (the authors' code) feeds the master the option layer's output at option 0,
    ``"trunk"`` the trunk features ``h``. For continuous actions ``q^L``/``p^L`` output Gaussian means; log-stds are
    state-independent parameters per slot and option (posterior) and per option (prior).

    Every parameter has a leading member dimension: ``generators`` (one per member, ``None`` = torch's global
    generator) sets how many members the policy holds and draws each member's initialisation; members share
    nothing. :meth:`member` and :meth:`load_member` move one member in and out (checkpoints, evaluation, figures).
    """

    MASTER_INPUTS = ("option0", "trunk")

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        *,
        continuous: bool,
        num_slots: int,
        num_options: int,
        hidden: Sequence[int],
        encoder_output_size: int,
        option_embedding: int = 128,
        master_input: str = "option0",
        learn_terminations: bool = True,
        num_primitives: int = 0,
        generators: Generators = (None,),
    ) -> None:
        super().__init__()
        if master_input not in self.MASTER_INPUTS:
            raise ValueError(f"master_input={master_input!r}; valid: {', '.join(self.MASTER_INPUTS)}")
        self.continuous = continuous
        # False for DISTRAL and flat learners: no termination terms anywhere (with one option, no master terms).
        self.learn_terminations = learn_terminations
        self.num_slots, self.num_options, self.action_dim = num_slots, num_options, action_dim
        self.master_input = master_input
        self._encoder_args = (obs_dim, tuple(hidden), num_options, option_embedding, encoder_output_size)
        self.encoder = OptionEncoder(*self._encoder_args, generators)
        # After transfer the priors read a frozen copy of the encoder while the posteriors keep training theirs,
        # and master and value read a fresh one of their own (authors' ``reset_encoder_in_test``).
        self.prior_encoder: OptionEncoder | None = None
        self.control_encoder: OptionEncoder | None = None
        h_dim, f_dim = self.encoder.trunk_dim, self.encoder.feature_dim
        # Hard options + primitives (paper Fig. 2e): the master may also pick one of ``num_primitives`` primitive
        # actions, i.e. a one-step option ``z = num_options + a`` that always terminates after its step.
        self.num_primitives = num_primitives
        master_dim = f_dim if master_input == "option0" else h_dim
        self.master = SlotLinear(num_slots, master_dim, num_options + num_primitives, POLICY_GAIN, generators)
        self.termination = SlotLinear(num_slots, f_dim, 2, POLICY_GAIN, generators)
        self.value = SlotLinear(num_slots, f_dim, 1, VALUE_GAIN, generators)
        self.intra = SlotLinear(num_slots, f_dim, action_dim, POLICY_GAIN, generators)
        self.prior_intra = MemberLinear(f_dim, action_dim, POLICY_GAIN, generators)
        self.prior_termination = MemberLinear(f_dim, 2, POLICY_GAIN, generators)
        members = len(generators)
        if continuous:
            self.intra_log_std = nn.Parameter(torch.zeros(members, num_slots, num_options, action_dim))
            self.prior_log_std = nn.Parameter(torch.zeros(members, num_options, action_dim))
        self.frozen_posteriors = False  # MSOL(frozen): q^L = p^L, q^T = p^T_θ

    @property
    def members(self) -> int:
        return self.master.members

    # ------------------------------------------------------------------ members
    def member(self, index: int) -> HierarchicalPolicy:
        """A population-of-one copy of member ``index`` (its own tensors): what evaluation, figures and probes use."""
        return member_module(self, index)

    def load_member(self, index: int, state: dict[str, torch.Tensor]) -> None:
        """Set member ``index`` from the ``state_dict`` of a population of one (a single run's checkpoint)."""
        load_member_state(self, index, state)

    # ------------------------------------------------------------------ protocol operations
    @torch.no_grad()
    def reset_slot(self, slot: int, generators: Generators) -> None:
        """Regular task-slot reset of every member: fresh master and value (drawn from each member's generator);
        posteriors re-initialised to the current priors."""
        self.master.reset_slot(slot, generators)
        self.value.reset_slot(slot, generators)
        self.intra.copy_into_slot(slot, self.prior_intra)
        self.termination.copy_into_slot(slot, self.prior_termination)
        if self.continuous:
            self.intra_log_std[:, slot].copy_(self.prior_log_std)

    @torch.no_grad()
    def start_transfer(self, frozen: bool, generators: Generators, fresh_control_encoder: bool = True) -> None:
        """Freeze the priors (on a frozen copy of the encoder) and start every slot from them.

        ``fresh_control_encoder``: master and value read a freshly initialised encoder (authors' code) instead of
        the posteriors' copy of the learned one.
        """
        import copy

        self.prior_encoder = copy.deepcopy(self.encoder)
        for module in (self.prior_encoder, self.prior_intra, self.prior_termination):
            module.requires_grad_(False)
        if self.continuous:
            self.prior_log_std.requires_grad_(False)
        if fresh_control_encoder:
            self.control_encoder = OptionEncoder(*self._encoder_args, generators)
        for slot in range(self.num_slots):
            self.reset_slot(slot, generators)
        self.frozen_posteriors = frozen
        if frozen:
            for module in (self.intra, self.termination):
                module.requires_grad_(False)
            if self.continuous:
                self.intra_log_std.requires_grad_(False)

    # ------------------------------------------------------------------ distributions
    def trunk(self, obs: torch.Tensor) -> Trunk:
        """Posterior trunk features (and, after transfer, the frozen prior's and master/value's) for ``obs``."""
        prior = Trunk.of(self.prior_encoder, obs) if self.prior_encoder is not None else None
        control = Trunk.of(self.control_encoder, obs) if self.control_encoder is not None else None
        return Trunk.of(self.encoder, obs, prior, control)

    def option_features(self, trunk: Trunk, option: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(posterior, prior) option-conditioned features ``f(h, z)`` for option indices ``option``."""
        f = option_features(trunk.pre, trunk.table, option)
        f_prior = f if trunk.prior is None else option_features(trunk.prior.pre, trunk.prior.table, option)
        return f, f_prior

    def master_logits(self, trunk: Trunk, slot: torch.Tensor) -> torch.Tensor:
        """``q^H`` logits; the master never sees ``z_{t-1}``: it reads ``f(h, 0)`` or ``h`` (``master_input``)."""
        src = trunk.of_control
        if self.master_input == "trunk":
            return self.master(src.h, slot)
        members, width = src.table.shape[0], src.pre.shape[-1]
        x = F.relu(src.pre.view(members, -1, width) + src.table[:, :1]).view(-1, width)  # each member's f(h, 0)
        return self.master(x, slot)

    def termination_logits(
        self, f_prev: torch.Tensor, f_prev_prior: torch.Tensor, slot: torch.Tensor, z_prev: torch.Tensor | None = None,
        *, with_prior: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(posterior q^T logits, learned prior p^T_θ logits) at ``(s_t, z_{t-1})``.

        ``with_prior=False`` skips the prior head (acting needs only the posterior) and returns ``None`` for it.
        """
        prior = self.prior_termination(f_prev_prior) \
            if with_prior or self.frozen_posteriors else None
        post = prior if self.frozen_posteriors else self.termination(f_prev, slot)
        if self.num_primitives and z_prev is not None:
            primitive = (z_prev >= self.num_options).unsqueeze(-1)
            always_end = torch.tensor([_NEVER, 0.0], dtype=post.dtype)
            post = torch.where(primitive, always_end, post)
            prior = None if prior is None else torch.where(primitive, always_end, prior)
        return post, prior if with_prior else None

    def value_of(self, trunk: Trunk, z_prev: torch.Tensor, slot: torch.Tensor,
                 f_prev: torch.Tensor | None = None) -> torch.Tensor:
        """``V(s_t, z_{t-1})``; ``f_prev`` (the shared ``f(h, z_{t-1})``, if already computed) is reused before
        transfer, when master and value share the encoder."""
        if trunk.control is None and f_prev is not None:
            return self.value(f_prev, slot).squeeze(-1)
        src = trunk.of_control
        return self.value(option_features(src.pre, src.table, z_prev), slot).squeeze(-1)

    def action_dists(
        self, f: torch.Tensor, f_prior: torch.Tensor, slot: torch.Tensor, option: torch.Tensor,
        *, with_prior: bool = True,
    ) -> tuple[torch.distributions.Distribution, torch.distributions.Distribution | None]:
        """(posterior q^L, prior p^L_θ) at ``(s_t, z_t)``; ``with_prior=False`` returns ``None`` for the prior."""
        need_prior = with_prior or self.frozen_posteriors
        prior_out = self.prior_intra(f_prior) if need_prior else None
        post_out = prior_out if self.frozen_posteriors else self.intra(f, slot)
        if self.num_primitives:
            primitive = (option >= self.num_options).unsqueeze(-1)
            chosen = F.one_hot((option - self.num_options).clamp(min=0), self.action_dim).bool()
            forced = torch.where(chosen, 0.0, _NEVER).to(post_out.dtype)
            post_out = torch.where(primitive, forced, post_out)
            prior_out = None if prior_out is None else torch.where(primitive, forced, prior_out)
        if not self.continuous:
            return (torch.distributions.Categorical(logits=post_out),
                    torch.distributions.Categorical(logits=prior_out) if with_prior else None)
        member = member_rows(self.members, option.shape[0])
        prior_std = self.prior_log_std[member, option].exp()
        post_std = prior_std if self.frozen_posteriors else self.intra_log_std[member, slot, option].exp()
        return (torch.distributions.Independent(torch.distributions.Normal(post_out, post_std), 1),
                torch.distributions.Independent(torch.distributions.Normal(prior_out, prior_std), 1)
                if with_prior else None)


def _member_param(param: nn.Parameter, index: int) -> nn.Parameter:
    return nn.Parameter(param.detach()[index:index + 1].clone(), requires_grad=param.requires_grad)


def member_module(module: nn.Module, index: int) -> nn.Module:
    """A copy of ``module`` whose parameters are member ``index``'s only (modules without parameters are shared):
    a population of one, what evaluation, figures and probes of one member use."""
    import copy

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
