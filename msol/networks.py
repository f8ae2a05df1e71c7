"""Networks of the hierarchical policy (spec/msol.md, "Architecture").

Shapes: ``B`` rows (all envs of all task slots at once), ``n`` task slots, ``m`` options, ``A`` actions.

* ``OptionEncoder``: obs -> trunk features ``h`` (the listed hidden layers) and, for an option ``z``,
  ``f(h, z) = ReLU(W [h, Linear(onehot z)])`` of width ``encoder_output_size`` (what the heads see; the master
  reads ``f(h, 0)`` as in the authors' code, or ``h``). One encoder serves every task slot, priors and posteriors
  alike during option learning.
* ``SlotLinear``: one linear head per task slot evaluated for all slots in ONE matmul, then each row picks its own
  slot's output — a single forward pass serves every task, with no Python loop over tasks.
"""

from __future__ import annotations

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


def init_linear(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights with ``gain``, zero bias; returns ``layer``."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class OptionEncoder(nn.Module):
    """Shared feature extractor: the trunk (``hidden``), then the option layer fed with the option's embedding."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], num_options: int, option_embedding: int,
                 output_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for size in hidden:
            layers += [init_linear(nn.Linear(width, size), ENCODER_GAIN), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.trunk_dim = width
        self.num_options = num_options
        # Orthogonal with gain 1 on a one-hot input: each embedding has unit norm (entries ≈ 1/√128), small next to
        # the trunk features, so a fresh network's option features follow the state (docs/msol.md).
        self.option_embed = init_linear(nn.Linear(num_options, option_embedding), EMBEDDING_GAIN)
        self.option_layer = init_linear(nn.Linear(width + option_embedding, output_size), ENCODER_GAIN)
        self.feature_dim = output_size

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.trunk(obs)

    def option_input(self, h: torch.Tensor) -> torch.Tensor:
        """The state part of the option layer, ``W_h h + b``: the same for every option, so computed once."""
        return F.linear(h, self.option_layer.weight[:, : self.trunk_dim], self.option_layer.bias)

    def option_table(self) -> torch.Tensor:
        """The option part of the option layer for each option index, ``[m + 1, F]``.

        ``W_z Embed(onehot z)`` only depends on ``z``, so ``f(h, z) = ReLU(W_h h + b + table[z])`` equals the
        concatenation form exactly while costing one add per row instead of a wide matmul per option.
        Row ``m`` is for primitive actions offered to the master: no one-hot, only the embedding's bias.
        """
        weight = self.option_embed.weight.t()  # [m, E]: the embedding of each one-hot
        embed = torch.cat([weight, weight.new_zeros(1, weight.shape[1])])
        return F.linear(embed + self.option_embed.bias, self.option_layer.weight[:, self.trunk_dim:])


def option_features(pre: torch.Tensor, table: torch.Tensor, option: torch.Tensor) -> torch.Tensor:
    """``f(h, z) = ReLU(pre + table[z])``; indices beyond the options (primitives) share the last row."""
    return F.relu(pre + table[option.clamp(max=table.shape[0] - 1)])


class Trunk(NamedTuple):
    """Everything the heads need from one batch of observations, computed once per forward.

    ``prior`` holds the same for the frozen prior encoder after transfer (``None`` while they share one).
    """

    h: torch.Tensor       # trunk features
    pre: torch.Tensor     # W_h h + b of the option layer
    table: torch.Tensor   # [m + 1, F] option part of the option layer
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
    """A linear layer per task slot; ``forward(x, slot)`` applies row ``b``'s own slot's weights.

    ``weight`` is stored ``[in, slots, out]`` (slot on dim :attr:`WEIGHT_SLOT_DIM`, ``bias`` ``[slots, out]``) so
    that all slots' weights are one ``[in, slots·out]`` matrix without a copy.
    """

    WEIGHT_SLOT_DIM = 1
    BIAS_SLOT_DIM = 0

    def __init__(self, num_slots: int, in_features: int, out_features: int, gain: float = 1.0) -> None:
        super().__init__()
        self.num_slots, self.in_features, self.out_features = num_slots, in_features, out_features
        self.gain = gain
        self.weight = nn.Parameter(torch.empty(in_features, num_slots, out_features))
        self.bias = nn.Parameter(torch.empty(num_slots, out_features))
        for slot in range(num_slots):
            self.reset_slot(slot)

    def forward(self, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        # All slots in one matmul ([B, in] @ [in, n*out] + bias), then gather each row's slot: cheaper than a bmm
        # over per-row weight copies for the small heads used here, and it keeps autograd simple.
        out = torch.addmm(self.bias.view(-1), x, self.weight.view(self.in_features, -1))
        out = out.view(x.shape[0], self.num_slots, self.out_features)
        return out.gather(1, slot.view(-1, 1, 1).expand(-1, 1, self.out_features)).squeeze(1)

    def slot_weight(self, slot: int) -> torch.Tensor:
        """Slot ``slot``'s ``[in, out]`` weight (a view)."""
        return self.weight[:, slot]

    @torch.no_grad()
    def reset_slot(self, slot: int) -> None:
        """Re-initialise one slot: orthogonal weights with this head's gain, zero bias (:func:`init_linear`)."""
        weight = torch.empty(self.out_features, self.in_features, dtype=self.weight.dtype)
        nn.init.orthogonal_(weight, self.gain)
        self.slot_weight(slot).copy_(weight.t())
        self.bias[slot].zero_()

    @torch.no_grad()
    def copy_into_slot(self, slot: int, source: nn.Linear) -> None:
        """Set one slot's weights to those of a shared ``nn.Linear`` (posterior <- prior)."""
        self.slot_weight(slot).copy_(source.weight.t())
        self.bias[slot].copy_(source.bias)


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
        self.encoder = OptionEncoder(*self._encoder_args)
        # After transfer the priors read a frozen copy of the encoder while the posteriors keep training theirs,
        # and master and value read a fresh one of their own (authors' ``reset_encoder_in_test``).
        self.prior_encoder: OptionEncoder | None = None
        self.control_encoder: OptionEncoder | None = None
        h_dim, f_dim = self.encoder.trunk_dim, self.encoder.feature_dim
        # Hard options + primitives (paper Fig. 2e): the master may also pick one of ``num_primitives`` primitive
        # actions, i.e. a one-step option ``z = num_options + a`` that always terminates after its step.
        self.num_primitives = num_primitives
        master_dim = f_dim if master_input == "option0" else h_dim
        self.master = SlotLinear(num_slots, master_dim, num_options + num_primitives, gain=POLICY_GAIN)
        self.termination = SlotLinear(num_slots, f_dim, 2, gain=POLICY_GAIN)
        self.value = SlotLinear(num_slots, f_dim, 1, gain=VALUE_GAIN)
        self.intra = SlotLinear(num_slots, f_dim, action_dim, gain=POLICY_GAIN)
        self.prior_intra = init_linear(nn.Linear(f_dim, action_dim), POLICY_GAIN)
        self.prior_termination = init_linear(nn.Linear(f_dim, 2), POLICY_GAIN)
        if continuous:
            self.intra_log_std = nn.Parameter(torch.zeros(num_slots, num_options, action_dim))
            self.prior_log_std = nn.Parameter(torch.zeros(num_options, action_dim))
        self.frozen_posteriors = False  # MSOL(frozen): q^L = p^L, q^T = p^T_θ

    # ------------------------------------------------------------------ protocol operations
    @torch.no_grad()
    def reset_slot(self, slot: int) -> None:
        """Regular task-slot reset: fresh master and value; posteriors re-initialised to the current priors."""
        self.master.reset_slot(slot)
        self.value.reset_slot(slot)
        self.intra.copy_into_slot(slot, self.prior_intra)
        self.termination.copy_into_slot(slot, self.prior_termination)
        if self.continuous:
            self.intra_log_std[slot].copy_(self.prior_log_std)

    @torch.no_grad()
    def start_transfer(self, frozen: bool, fresh_control_encoder: bool = True) -> None:
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
            self.control_encoder = OptionEncoder(*self._encoder_args)
        for slot in range(self.num_slots):
            self.reset_slot(slot)
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
        x = src.h if self.master_input == "trunk" else F.relu(src.pre + src.table[0])
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
        prior_std = self.prior_log_std[option].exp()
        post_std = prior_std if self.frozen_posteriors else self.intra_log_std[slot, option].exp()
        return (torch.distributions.Independent(torch.distributions.Normal(post_out, post_std), 1),
                torch.distributions.Independent(torch.distributions.Normal(prior_out, prior_std), 1)
                if with_prior else None)
