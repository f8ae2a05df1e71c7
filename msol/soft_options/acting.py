"""One hierarchical decision step for every env of every task slot of every member: terminate? → option → action.

Every random draw comes from the acting member's own ``torch.Generator`` (:func:`step_noise`), so a member of a
population makes exactly the draws a single run of its seed makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from msol.common.layers import Generators
from msol.common.population import categorical_draw, member_uniforms
from msol.soft_options.networks import HierarchicalPolicy


@dataclass
class Step:
    b: torch.Tensor             # 1 = the previous option terminated (forced on first steps)
    z: torch.Tensor             # option in force for this step
    z_hat_switch: torch.Tensor  # b̂ = 1[ẑ ≠ z_{t-1}], ẑ a fresh master sample
    action: torch.Tensor
    logp: torch.Tensor          # joint ln q^L + b ln q^H + (1-first) ln q^T (PPO's "old" log-prob)
    value: torch.Tensor         # V(s_t, z_{t-1})


@torch.no_grad()
def act(
    policy: HierarchicalPolicy, obs: torch.Tensor, z_prev: torch.Tensor, first: torch.Tensor, slot: torch.Tensor,
    *, generators: Generators = (None,), greedy_options: bool = False, greedy_master: bool = False,
) -> Step:
    """Sample ``b_t ~ q^T``, then ``z_t ~ q^H`` if ``b_t = 1``, then ``a_t ~ q^L(·|s_t, z_t)``.

    ``generators``: one per member of ``policy`` (rows are member-major). ``greedy_options`` takes the argmax of
    termination and intra-option policies (the authors' code does this with frozen options); ``greedy_master`` the
    argmax of the master too (the authors' test episodes: both on).
    """
    u, eps = step_noise(generators, obs.shape[0], policy.action_dim if policy.continuous else 0, obs.dtype,
                        obs.device)
    trunk = policy.trunk(obs)
    f_prev, f_prev_prior = policy.option_features(trunk, z_prev)
    term_logits, _ = policy.termination_logits(f_prev, f_prev_prior, slot, z_prev, with_prior=False)
    # Plain log-softmax and inverse-CDF draws instead of torch.distributions.Categorical: a third of the small ops
    # (acting is per-op overhead bound at these batch sizes; docs/benchmarks.md).
    log_T = term_logits.log_softmax(-1)
    if policy.learn_terminations:
        b = log_T.argmax(-1) if greedy_options else categorical_draw(log_T, u[:, 0])
        b = torch.where(first > 0, torch.ones_like(b), b)
    else:
        b = first.long()

    log_H = policy.master_logits(trunk, slot).log_softmax(-1)
    z_new = log_H.argmax(-1) if greedy_master else categorical_draw(log_H, u[:, 1])
    z = torch.where(b == 1, z_new, z_prev)

    f, f_prior = policy.option_features(trunk, z)
    q_L, _ = policy.action_dists(f, f_prior, slot, z, with_prior=False)
    if greedy_options:
        action = q_L.mean if policy.continuous else q_L.logits.argmax(-1)
    elif policy.continuous:
        action = q_L.mean + q_L.stddev * eps
    else:
        action = categorical_draw(q_L.logits, u[:, 2])
    logp = q_L.log_prob(action) + b * _pick(log_H, z)
    if policy.learn_terminations:
        logp = logp + (1.0 - first) * _pick(log_T, b)
    return Step(b=b, z=z, z_hat_switch=(z_new != z_prev).long(), action=action, logp=logp,
                value=policy.value_of(trunk, z_prev, slot, f_prev))


def step_noise(generators: Generators, rows: int, action_dim: int, dtype: torch.dtype, device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Uniforms ``[rows, 3]`` (termination, master, discrete action) and, for ``action_dim`` > 0, standard normals
    ``[rows, action_dim]`` (continuous action): member ``k``'s block of rows from ``generators[k]``, drawn on the CPU
    and moved to ``device``."""
    u = member_uniforms(generators, rows, 3, dtype, device)
    if not action_dim:
        return u, None
    per_member = rows // len(generators)
    return u, torch.cat([torch.randn(per_member, action_dim, generator=g, dtype=dtype, device="cpu")
                         for g in generators]).to(device)


def _pick(log_probs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return log_probs.gather(-1, index.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def value_after(policy: HierarchicalPolicy, obs: torch.Tensor, z: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
    """``V(s, z)`` where ``z`` is the option in force when ``s`` was reached (bootstrap values)."""
    return policy.value_of(policy.trunk(obs), z, slot)
