"""Networks of the hierarchical policy (docs/spec/msol.md, "Architecture").

Shapes: ``B`` rows (all envs of all task slots of all population members at once), ``S`` members, ``n`` task slots,
``m`` options, ``A`` actions. Rows come in ``S`` equal member-major blocks: row ``r`` belongs to member
``r // (B / S)``. A single run is a population of one.

* ``OptionEncoder``: obs -> trunk features ``h`` (the listed hidden layers) and, for an option ``z``,
  ``f(h, z) = ReLU(W [h, Linear(onehot z)])`` of width ``encoder_output_size`` (what the heads see; the master
  reads ``f(h, 0)`` as in the authors' code, or ``h``). One encoder serves every task slot, priors and posteriors
  alike during option learning.
* Heads: ``SlotLinear`` for the posteriors (one per task slot), ``MemberLinear`` for the shared priors
  (msol/common/layers.py), so one forward pass serves every task of every member.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal
from torch.nn import functional as F

from msol.common.layers import (
    Generators,
    MemberLinear,
    SlotLinear,
    load_member_state,
    member_linear,
    member_module,
    member_rows,
)

_NEVER = -1e9  # a logit for "impossible" that keeps log-probabilities finite

# Orthogonal initialisation with zero biases (docs/spec/msol.md, "Initialisation"): ReLU layers with gain √2, every
# policy head with 0.01 so that every policy, and every master a slot reset re-creates, starts uniform.
ENCODER_GAIN = math.sqrt(2.0)
POLICY_GAIN = 0.01
VALUE_GAIN = 1.0
EMBEDDING_GAIN = 1.0


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


def diagonal_gaussian(mean: torch.Tensor, std: torch.Tensor) -> Independent:
    """``N(mean, diag(std²))`` over the last dimension (arguments are ours: no validation)."""
    return Independent(Normal(mean, std, validate_args=False), 1, validate_args=False)


def option_features(pre: torch.Tensor, table: torch.Tensor, option: torch.Tensor) -> torch.Tensor:
    """``f(h, z) = ReLU(pre + table[k, z])`` for each row's member ``k``; indices beyond the options (primitives)
    share the last row."""
    members, entries = table.shape[0], table.shape[1]
    index = option.clamp(max=entries - 1)
    if members == 1:
        return F.relu(pre + table[0][index])
    index = index + member_rows(members, option.shape[0], option.device) * entries
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


class HierarchicalPolicy(nn.Module):
    """Posterior heads per task slot and shared prior heads, on one (or, after transfer, three) encoders.

    Heads (one linear layer each, docs/spec/msol.md):

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

    @property
    def device(self) -> torch.device:
        return self.master.weight.device

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
            always_end = torch.tensor([_NEVER, 0.0], dtype=post.dtype, device=post.device)
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
            return (Categorical(logits=post_out, validate_args=False),
                    Categorical(logits=prior_out, validate_args=False) if with_prior else None)
        member = member_rows(self.members, option.shape[0], option.device)
        prior_std = self.prior_log_std[member, option].exp()
        post_std = prior_std if self.frozen_posteriors else self.intra_log_std[member, slot, option].exp()
        return diagonal_gaussian(post_out, post_std), diagonal_gaussian(prior_out, prior_std) if with_prior else None
