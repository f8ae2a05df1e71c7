"""Rollout storage: ``T`` steps × ``B`` envs of everything the MSOL losses need, as preallocated tensors."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Rollout:
    """One rollout, time-major (``[T, B, ...]``).

    ``z_prev`` is the option in force before the step (what termination and value condition on), ``z`` the option
    after it, ``b`` the termination decision (forced to 1 on ``first`` steps), ``z_hat_switch`` the distillation
    target ``b̂_t = 1[ẑ_t ≠ z_{t-1}]``. ``bootstrap`` holds ``V(final_obs, z_t)`` on truncated steps (0 elsewhere): a
    time-limit cut is not a real end, so the return bootstraps through it.
    """

    obs: torch.Tensor
    z_prev: torch.Tensor
    z: torch.Tensor
    b: torch.Tensor
    action: torch.Tensor
    first: torch.Tensor
    z_hat_switch: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    bootstrap: torch.Tensor
    old_logp: torch.Tensor
    old_value: torch.Tensor

    @classmethod
    def allocate(cls, steps: int, num_envs: int, obs_dim: int, action_shape: tuple[int, ...],
                 continuous: bool, device: torch.device) -> Rollout:
        def zeros(*shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
            return torch.zeros(steps, num_envs, *shape, dtype=dtype, device=device)

        return cls(
            obs=zeros(obs_dim),
            z_prev=zeros(dtype=torch.long),
            z=zeros(dtype=torch.long),
            b=zeros(),
            action=zeros(*action_shape) if continuous else zeros(dtype=torch.long),
            first=zeros(),
            z_hat_switch=zeros(dtype=torch.long),
            reward=zeros(),
            terminated=zeros(),
            truncated=zeros(),
            bootstrap=zeros(),
            old_logp=zeros(),
            old_value=zeros(),
        )

    def flat(self, members: int = 1) -> Rollout:
        """The same data as ``[T*B, ...]`` rows (for one batched forward over the whole rollout), member-major: the
        ``B`` envs are ``members`` blocks and each member's ``T·B/members`` rows come together (views for one)."""
        return Rollout(**{f.name: member_major(getattr(self, f.name), members) for f in fields(self)})

    def index(self, idx: torch.Tensor) -> Rollout:
        """Rows ``idx`` of a flat rollout (PPO minibatches)."""
        return Rollout(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def member_major(x: torch.Tensor, members: int) -> torch.Tensor:
    """``[T, S·n, ...]`` (time-major, as stored) -> ``[S·T·n, ...]`` rows, member by member."""
    steps, envs = x.shape[0], x.shape[1]
    return x.view(steps, members, envs // members, *x.shape[2:]).transpose(0, 1).reshape(-1, *x.shape[2:])


def time_major(x: torch.Tensor, members: int, steps: int) -> torch.Tensor:
    """The inverse of :func:`member_major` for per-row values: ``[S·T·n]`` -> ``[T, S·n]``."""
    return x.view(members, steps, -1).transpose(0, 1).reshape(steps, -1)
