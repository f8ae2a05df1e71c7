"""MSOL's regularised reward and losses (docs/spec/msol.md, "Regularized reward" and "Losses"), top to bottom.

Notation follows the paper: posterior ``q`` (per task), prior ``p`` (shared); ``L`` intra-option, ``H`` master,
``T`` termination; ``b_t`` = 1 when the previous option ``z_{t-1}`` terminates; ``first_t`` = first step of an
episode (``b_1 = 1`` forced, termination terms masked).

A batch holds the rows of ``members`` population members in equal member-major blocks. Every loss is each member's
plain mean over its rows, summed over members: each member's parameters get exactly the gradient of its own loss.
Statistics come back per member (``[members]`` tensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Categorical

from msol.soft_options.networks import HierarchicalPolicy
from msol.soft_options.storage import Rollout


@dataclass
class RolloutTerms:
    """Every log-probability, entropy and value of a (flat) batch under the current networks."""

    logq_L: torch.Tensor      # ln q^L_i(a_t | s_t, z_t)
    logp_L: torch.Tensor      # ln p^L_θ(a_t | s_t, z_t)
    ent_L: torch.Tensor       # H q^L_i(· | s_t, z_t)
    logq_H: torch.Tensor      # ln q^H_i(z_t | s_t)
    ent_H: torch.Tensor       # H q^H_i(· | s_t)
    logq_T: torch.Tensor      # ln q^T_i(b_t | s_t, z_{t-1})
    ent_T: torch.Tensor       # H q^T_i(· | s_t, z_{t-1})
    logp_T: torch.Tensor      # ln p^T(b_t | s_t, z_{t-1}) of the prior used in the REWARD (fixed or frozen-learned)
    logp_T_hat: torch.Tensor  # ln p^T_θ(b̂_t | s_t, z_{t-1}) of the LEARNED prior, for its distillation
    value: torch.Tensor       # V_i(s_t, z_{t-1})


def rollout_terms(
    policy: HierarchicalPolicy, batch: Rollout, slot: torch.Tensor, *, fixed_termination_prior: float | None
) -> RolloutTerms:
    """One forward over all rows of ``batch`` (all task slots at once).

    ``fixed_termination_prior`` is ``p^T(b=1) = 1 − α`` during option learning; ``None`` after transfer, when the
    learned (now frozen) ``p^T_θ`` is the prior in the reward.
    """
    trunk = policy.trunk(batch.obs)
    f_prev, f_prev_prior = policy.option_features(trunk, batch.z_prev)
    f_cur, f_cur_prior = policy.option_features(trunk, batch.z)

    q_L, p_L = policy.action_dists(f_cur, f_cur_prior, slot, batch.z)
    q_H = Categorical(logits=policy.master_logits(trunk, slot), validate_args=False)
    term_logits, prior_term_logits = policy.termination_logits(f_prev, f_prev_prior, slot, batch.z_prev)
    q_T = Categorical(logits=term_logits, validate_args=False)
    p_T_learned = Categorical(logits=prior_term_logits, validate_args=False)

    b = batch.b.long()
    value = policy.value_of(trunk, batch.z_prev, slot, f_prev)
    if not policy.learn_terminations:
        zero = torch.zeros_like(batch.reward)
        return RolloutTerms(logq_L=q_L.log_prob(batch.action), logp_L=p_L.log_prob(batch.action), ent_L=q_L.entropy(),
                          logq_H=q_H.log_prob(batch.z), ent_H=q_H.entropy(), logq_T=zero, ent_T=zero, logp_T=zero,
                          logp_T_hat=zero, value=value)
    if fixed_termination_prior is None:
        logp_T = p_T_learned.log_prob(b)
    else:
        p_terminate = fixed_termination_prior
        logp_T = torch.where(b == 1, math.log(p_terminate), math.log(1.0 - p_terminate)).to(term_logits.dtype)
    return RolloutTerms(
        logq_L=q_L.log_prob(batch.action),
        logp_L=p_L.log_prob(batch.action),
        ent_L=q_L.entropy(),
        logq_H=q_H.log_prob(batch.z),
        ent_H=q_H.entropy(),
        logq_T=q_T.log_prob(b),
        ent_T=q_T.entropy(),
        logp_T=logp_T,
        logp_T_hat=p_T_learned.log_prob(batch.z_hat_switch),
        value=value,
    )


def regularized_reward(reward: torch.Tensor, ev: RolloutTerms, first: torch.Tensor, beta: float) -> torch.Tensor:
    """``R_t = r_t − β[ln q^L − ln p^L] − β[ln q^T − ln p^T](1 − first_t)``, with no gradient through it.

    The master's ``−β ln q^H/p^H`` term is dropped (paper appendix); the master gets an entropy bonus instead.
    """
    kl_L = ev.logq_L - ev.logp_L
    kl_T = (ev.logq_T - ev.logp_T) * (1.0 - first)
    return (reward - beta * kl_L - beta * kl_T).detach()


def joint_logprob(ev: RolloutTerms, batch: Rollout) -> torch.Tensor:
    """``ln q^L(a_t) + b_t ln q^H(z_t) + (1 − first_t) ln q^T(b_t)``: the log-probability of the step's choices."""
    return ev.logq_L + batch.b * ev.logq_H + (1.0 - batch.first) * ev.logq_T


def policy_terms(ev: RolloutTerms, batch: Rollout, entropy_coef: float, distill_priors: bool,
                 action_entropy_coef: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row entropy loss ``L_H`` and prior-distillation loss ``L_P`` (shared by the A2C and PPO forms).

    ``action_entropy_coef`` (default: ``entropy_coef``) weighs ``H q^L`` separately, as the paper does for Swimmer
    (4e-4 on actions, 0.1 on master and termination).
    """
    lam_L = entropy_coef if action_entropy_coef is None else action_entropy_coef
    L_H = -(lam_L * ev.ent_L + entropy_coef * (batch.b * ev.ent_H + (1.0 - batch.first) * ev.ent_T))
    if distill_priors:
        # L_P: the prior learns the average posterior; p^T_θ learns "would the master switch if it could" (b̂).
        L_P = -ev.logp_L - (1.0 - batch.first) * ev.logp_T_hat
    else:
        L_P = torch.zeros_like(L_H)
    return L_H, L_P


def member_means(x: torch.Tensor, members: int) -> torch.Tensor:
    """Each member's mean over its rows, ``[members]``."""
    return x.view(members, -1).mean(1)


def msol_a2c_loss(
    ev: RolloutTerms, batch: Rollout, returns: torch.Tensor, *, entropy_coef: float,
    value_coef: float = 0.5, policy_coef: float = 1.0, prior_coef: float = 1.0, distill_priors: bool = True,
    action_entropy_coef: float | None = None, members: int = 1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean over all rows of every task (λ_V L_V + λ_A L_A + λ_P L_P + L_H)``, ``2λ_V = λ_A = λ_P = 1``.

    ``L_V = A²`` (so the value term is ``½·mean(A²)`` and its gradient ``A·∇V``), as in the authors' code.
    """
    A = returns - ev.value
    L_V = A.pow(2)
    L_A = -A.detach() * joint_logprob(ev, batch)
    L_H, L_P = policy_terms(ev, batch, entropy_coef, distill_priors, action_entropy_coef)
    per_row = value_coef * L_V + policy_coef * L_A + prior_coef * L_P + L_H
    loss = member_means(per_row, members).sum()
    return loss, _member_stats(members, {"loss/value": L_V, "loss/policy": L_A, "loss/prior": L_P,
                                         "loss/entropy": L_H})


def _member_stats(members: int, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: member_means(term.detach(), members) for name, term in terms.items()}


def msol_ppo_loss(
    ev: RolloutTerms, batch: Rollout, advantages: torch.Tensor, returns: torch.Tensor, *,
    entropy_coef: float, clip: float, value_coef: float = 0.5, prior_coef: float = 1.0, distill_priors: bool = True,
    action_entropy_coef: float | None = None, members: int = 1,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate on the joint ratio ``q^L q^H q^T / old``, clipped value loss, plus ``L_H`` and ``L_P``."""
    ratio = (joint_logprob(ev, batch) - batch.old_logp).exp()
    L_A = -torch.min(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
    value_clipped = batch.old_value + (ev.value - batch.old_value).clamp(-clip, clip)
    L_V = 0.5 * torch.max((ev.value - returns).pow(2), (value_clipped - returns).pow(2))
    L_H, L_P = policy_terms(ev, batch, entropy_coef, distill_priors, action_entropy_coef)
    per_row = value_coef * L_V + L_A + prior_coef * L_P + L_H
    loss = member_means(per_row, members).sum()
    clipped = ((ratio - 1.0).abs() > clip).to(per_row.dtype)
    return loss, _member_stats(members, {"loss/value": L_V, "loss/policy": L_A, "loss/prior": L_P,
                                         "loss/entropy": L_H, "ppo/clip_frac": clipped})
