"""Networks of the hierarchical policy (spec/msol.md, "Architecture").

Shapes: ``B`` rows (all envs of all task slots at once), ``n`` task slots, ``m`` options, ``A`` actions.

* ``OptionEncoder``: obs -> trunk features ``h`` (what the master sees) and, for an option ``z``,
  ``f(h, z) = ReLU(W [h, Linear(onehot z)])`` (what the option-conditioned heads see). One encoder serves every
  task slot, priors and posteriors alike during option learning.
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


class OptionEncoder(nn.Module):
    """Shared feature extractor with the option one-hot injected before the last hidden layer."""

    def __init__(self, obs_dim: int, hidden: Sequence[int], num_options: int, option_embedding: int = 128,
                 embedding_init_std: float = 0.1) -> None:
        super().__init__()
        if len(hidden) < 2:
            # One hidden layer: the trunk is the identity on a Linear+ReLU and the option layer is the only layer.
            hidden = (hidden[0], hidden[0])
        layers: list[nn.Module] = []
        width = obs_dim
        for size in hidden[:-1]:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.trunk = nn.Sequential(*layers)
        self.trunk_dim = width
        self.num_options = num_options
        self.option_embed = nn.Linear(num_options, option_embedding)
        # **choice**: a small embedding init. With nn.Linear's default (weights up to ±1 for a one-hot input) the
        # 128 embedding inputs swamp the state features in the next layer, so a fresh network's features barely
        # depend on the state and learning starts late (measured on Moving Bandits, docs/msol.md).
        nn.init.normal_(self.option_embed.weight, std=embedding_init_std)
        nn.init.zeros_(self.option_embed.bias)
        self.option_layer = nn.Linear(width + option_embedding, hidden[-1])
        self.feature_dim = hidden[-1]

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

    h: torch.Tensor       # trunk features: the master's input
    pre: torch.Tensor     # W_h h + b of the option layer
    table: torch.Tensor   # [m + 1, F] option part of the option layer
    prior: Trunk | None = None

    @classmethod
    def of(cls, encoder: OptionEncoder, obs: torch.Tensor, prior: Trunk | None = None) -> Trunk:
        h = encoder.features(obs)
        return cls(h, encoder.option_input(h), encoder.option_table(), prior)


class SlotLinear(nn.Module):
    """A linear layer per task slot; ``forward(x, slot)`` applies row ``b``'s own slot's weights.

    ``weight`` is stored ``[in, slots, out]`` (slot on dim :attr:`WEIGHT_SLOT_DIM`, ``bias`` ``[slots, out]``) so
    that all slots' weights are one ``[in, slots·out]`` matrix without a copy.
    """

    WEIGHT_SLOT_DIM = 1
    BIAS_SLOT_DIM = 0

    def __init__(self, num_slots: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.num_slots, self.in_features, self.out_features = num_slots, in_features, out_features
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
        """Re-initialise one slot like ``nn.Linear`` does."""
        bound = 1.0 / math.sqrt(self.in_features)
        self.slot_weight(slot).uniform_(-bound, bound)
        self.bias[slot].uniform_(-bound, bound)

    @torch.no_grad()
    def copy_into_slot(self, slot: int, source: nn.Linear) -> None:
        """Set one slot's weights to those of a shared ``nn.Linear`` (posterior <- prior)."""
        self.slot_weight(slot).copy_(source.weight.t())
        self.bias[slot].copy_(source.bias)


class HierarchicalPolicy(nn.Module):
    """Posterior heads per task slot and shared prior heads, on one (or, after transfer, two) encoders.

    Heads (one linear layer each, spec/msol.md):

    ========================  ==================  ======================
    head                      input features      per slot / shared
    ========================  ==================  ======================
    master ``q^H``            ``h``               per slot
    termination ``q^T``       ``f(h, z_{t-1})``   per slot
    value ``V``               ``f(h, z_{t-1})``   per slot
    intra-option ``q^L``      ``f(h, z_t)``       per slot
    prior ``p^L_θ``           ``f(h, z_t)``       shared
    prior ``p^T_θ``           ``f(h, z_{t-1})``   shared (learned, used after transfer)
    ========================  ==================  ======================

    For continuous actions ``q^L``/``p^L`` output Gaussian means; log-stds are state-independent parameters per
    slot and option (posterior) and per option (prior).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        *,
        continuous: bool,
        num_slots: int,
        num_options: int,
        hidden: Sequence[int],
        option_embedding: int = 128,
        option_embedding_init_std: float = 0.1,
        learn_terminations: bool = True,
        num_primitives: int = 0,
    ) -> None:
        super().__init__()
        self.continuous = continuous
        # False for DISTRAL and flat learners: no termination terms anywhere (with one option, no master terms).
        self.learn_terminations = learn_terminations
        self.num_slots, self.num_options, self.action_dim = num_slots, num_options, action_dim
        self.encoder = OptionEncoder(obs_dim, hidden, num_options, option_embedding, option_embedding_init_std)
        # After transfer the priors read a frozen copy of the encoder while the posteriors keep training theirs.
        self.prior_encoder: OptionEncoder | None = None
        h_dim, f_dim = self.encoder.trunk_dim, self.encoder.feature_dim
        # Hard options + primitives (paper Fig. 2e): the master may also pick one of ``num_primitives`` primitive
        # actions, i.e. a one-step option ``z = num_options + a`` that always terminates after its step.
        self.num_primitives = num_primitives
        self.master = SlotLinear(num_slots, h_dim, num_options + num_primitives)
        self.termination = SlotLinear(num_slots, f_dim, 2)
        self.value = SlotLinear(num_slots, f_dim, 1)
        self.intra = SlotLinear(num_slots, f_dim, action_dim)
        self.prior_intra = nn.Linear(f_dim, action_dim)
        self.prior_termination = nn.Linear(f_dim, 2)
        if continuous:
            self.intra_log_std = nn.Parameter(torch.zeros(num_slots, num_options, action_dim))
            self.prior_log_std = nn.Parameter(torch.zeros(num_options, action_dim))
        self.frozen_posteriors = False  # MSOL(frozen): q^L = p^L, q^T = p^T_θ
        # **choice** (docs/msol.md): when True the prior heads read the shared features without sending gradients
        # into them, so distilling the prior (L_P) does not compete with the RL loss for the shared encoder.
        # Set per env (env.hparams.detach_prior_features): it made Moving Bandits learn and Taxi worse.
        self.detach_prior_features = False

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
    def start_transfer(self, frozen: bool) -> None:
        """Freeze the priors (on a frozen copy of the encoder) and start every slot from them."""
        import copy

        self.prior_encoder = copy.deepcopy(self.encoder)
        for module in (self.prior_encoder, self.prior_intra, self.prior_termination):
            module.requires_grad_(False)
        if self.continuous:
            self.prior_log_std.requires_grad_(False)
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
        """Posterior trunk features (and, after transfer, the frozen prior trunk's) for ``obs``."""
        prior = Trunk.of(self.prior_encoder, obs) if self.prior_encoder is not None else None
        return Trunk.of(self.encoder, obs, prior)

    def option_features(self, trunk: Trunk, option: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(posterior, prior) option-conditioned features ``f(h, z)`` for option indices ``option``."""
        f = option_features(trunk.pre, trunk.table, option)
        f_prior = f if trunk.prior is None else option_features(trunk.prior.pre, trunk.prior.table, option)
        return f, f_prior

    def _prior_input(self, features: torch.Tensor) -> torch.Tensor:
        return features.detach() if self.detach_prior_features and not self.frozen_posteriors else features

    def master_logits(self, h: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        return self.master(h, slot)

    def termination_logits(
        self, f_prev: torch.Tensor, f_prev_prior: torch.Tensor, slot: torch.Tensor, z_prev: torch.Tensor | None = None,
        *, with_prior: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(posterior q^T logits, learned prior p^T_θ logits) at ``(s_t, z_{t-1})``.

        ``with_prior=False`` skips the prior head (acting needs only the posterior) and returns ``None`` for it.
        """
        prior = self.prior_termination(self._prior_input(f_prev_prior)) \
            if with_prior or self.frozen_posteriors else None
        post = prior if self.frozen_posteriors else self.termination(f_prev, slot)
        if self.num_primitives and z_prev is not None:
            primitive = (z_prev >= self.num_options).unsqueeze(-1)
            always_end = torch.tensor([_NEVER, 0.0], dtype=post.dtype)
            post = torch.where(primitive, always_end, post)
            prior = None if prior is None else torch.where(primitive, always_end, prior)
        return post, prior if with_prior else None

    def value_of(self, f_prev: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        return self.value(f_prev, slot).squeeze(-1)

    def action_dists(
        self, f: torch.Tensor, f_prior: torch.Tensor, slot: torch.Tensor, option: torch.Tensor,
        *, with_prior: bool = True,
    ) -> tuple[torch.distributions.Distribution, torch.distributions.Distribution | None]:
        """(posterior q^L, prior p^L_θ) at ``(s_t, z_t)``; ``with_prior=False`` returns ``None`` for the prior."""
        need_prior = with_prior or self.frozen_posteriors
        prior_out = self.prior_intra(self._prior_input(f_prior)) if need_prior else None
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
