"""A2OC's values, targets and loss (docs/spec/baselines.md "Option-Critic"), read top to bottom with the paper's names.

``ε``: option exploration; ``η``: deliberation cost. Rows are flat ``[T*B]`` transitions ``(s_t, o_t, a_t, s_{t+1})``.
"""

from __future__ import annotations

import torch

from msol.baselines.option_critic.networks import OptionHeads
from msol.common.returns import nstep_returns


def option_value(q: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``V(s) = (1−ε) max_o Q(s,o) + ε mean_o Q(s,o)``: the value of the ε-greedy policy over options."""
    return (1.0 - epsilon) * q.max(dim=-1).values + epsilon * q.mean(dim=-1)


def arrival_value(heads: OptionHeads, option: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``U(s',o) = (1−β(s',o)) Q(s',o) + β(s',o) V(s')``: what arriving in ``s'`` with ``o`` is worth (bootstrap)."""
    q, _, beta = heads.at(option)
    return (1.0 - beta) * q + beta * option_value(heads.q, epsilon)


def deliberation_reward(reward: torch.Tensor, switched: torch.Tensor, eta: float) -> torch.Tensor:
    """``r_t − η`` on steps where the previous option terminated (never on an episode's first step)."""
    return reward - eta * switched


def nstep_targets(
    reward: torch.Tensor, switched: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
    bootstrap: torch.Tensor, last_arrival: torch.Tensor, gamma: float, eta: float,
) -> torch.Tensor:
    """``y_t = Σ_j γ^j (r_{t+j} − η·switched_{t+j}) + γ^k U(s_{t+k}, o_{t+k−1})``, ``[T, B]``.

    Bootstraps with ``U`` at the rollout's end (``last_arrival``) and after time-limit cuts (``bootstrap``), 0 after
    terminations: the n-step target of ``Q(s_t, o_t)`` for the call-and-return policy.
    """
    return nstep_returns(deliberation_reward(reward, switched, eta), terminated, truncated, bootstrap,
                         last_arrival, gamma)


def termination_loss(next_heads: OptionHeads, option: torch.Tensor, valid: torch.Tensor, epsilon: float,
                     eta: float, margin: float = 0.0) -> torch.Tensor:
    """``β(s',o) · sg(Q(s',o) − V(s') + η + margin)`` per row, at the NEXT state ``s'``, where the termination of
    ``o`` is actually decided (``valid`` = 0 where ``s'`` belongs to a new episode)."""
    q_next, _, beta_next = next_heads.at(option)
    advantage = (q_next - option_value(next_heads.q, epsilon)).detach()
    return beta_next * (advantage + eta + margin) * valid


def a2oc_loss(
    heads: OptionHeads, next_heads: OptionHeads, option: torch.Tensor, action: torch.Tensor, y: torch.Tensor,
    next_valid: torch.Tensor, *, epsilon: float, eta: float, margin: float, entropy_coef: float,
    critic_coef: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Critic ``½(y−Q(s,o))²`` + intra-option PG ``−ln π(a|s,o)·sg(y−Q(s,o))`` − entropy + termination term."""
    q, logits, _ = heads.at(option)
    pi = torch.distributions.Categorical(logits=logits, validate_args=False)
    L_Q = 0.5 * (y - q).pow(2)
    L_pi = -pi.log_prob(action) * (y - q).detach()
    L_H = -entropy_coef * pi.entropy()
    L_beta = termination_loss(next_heads, option, next_valid, epsilon, eta, margin)
    loss = (critic_coef * L_Q + L_pi + L_H + L_beta).mean()
    return loss, {"loss/critic": L_Q.mean().item(), "loss/policy": L_pi.mean().item(),
                  "loss/termination": L_beta.mean().item(), "entropy/intra_option": pi.entropy().mean().item(),
                  "q/mean": q.mean().item()}
