"""Adam for a population whose members do not all step together.

``torch.optim.Adam`` keeps one step count per parameter tensor, so it serves a population (dim 0 of every
parameter is the member) only while every member steps at every call — true for MSOL's learner. MLSH's PPO cuts
each member's own data into minibatches, so members make different numbers of steps per update; here every member
has its own step count (its own bias correction) and ``step(active)`` leaves the members that have no minibatch
untouched (parameters and moments), exactly as their own optimiser would be.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class MemberAdam(torch.optim.Optimizer):
    """Adam (no weight decay, no AMSGrad; torch's update rule) with a step count per population member."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, *, members: int,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if lr <= 0 or eps <= 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"MemberAdam: lr={lr}, eps={eps} must be > 0 and betas={betas} in [0, 1)")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})
        self.members = members
        for group in self.param_groups:
            for p in group["params"]:
                if p.shape[0] != members:
                    raise ValueError(f"MemberAdam: a parameter of shape {tuple(p.shape)} has no member dim of "
                                     f"size {members}")

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:  # type: ignore[override]
        """One Adam step for the members where ``active`` (``[members]`` bool; default all)."""
        device = self.param_groups[0]["params"][0].device
        on = torch.ones(self.members, dtype=torch.bool, device=device) if active is None else active
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros(self.members, dtype=torch.float64, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += on
                mask = on.view(-1, *[1] * (p.dim() - 1))
                grad, exp_avg, exp_avg_sq = p.grad, state["exp_avg"], state["exp_avg_sq"]
                exp_avg.copy_(torch.where(mask, exp_avg.lerp(grad, 1 - beta1), exp_avg))
                exp_avg_sq.copy_(torch.where(mask, exp_avg_sq * beta2 + (1 - beta2) * grad * grad, exp_avg_sq))
                steps = state["step"].clamp_min(1)
                step_size = (group["lr"] / (1 - beta1 ** steps)).to(p.dtype)
                correction2_sqrt = (1 - beta2 ** steps).sqrt().to(p.dtype)
                shape = (-1, *[1] * (p.dim() - 1))
                denom = exp_avg_sq.sqrt() / correction2_sqrt.view(shape) + group["eps"]
                p.sub_(torch.where(mask, step_size.view(shape) * exp_avg / denom, 0.0))
