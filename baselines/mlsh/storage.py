"""One MLSH rollout: ``T`` steps × ``B`` envs, primitive-level and (at decision steps) macro-level data."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class MLSHRollout:
    """Time-major ``[T, B, ...]`` tensors.

    ``decide`` marks steps where the master picked ``z`` (``master_logp``/``master_value`` valid there only);
    ``z`` is the sub-policy acting at every step. ``sub_bootstrap``/``master_bootstrap`` hold ``V_θz(final obs)`` and
    ``V_φ(final obs)`` on truncated steps (a time-limit cut is not an end: returns bootstrap through it).
    """

    obs: torch.Tensor
    decide: torch.Tensor
    z: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    sub_logp: torch.Tensor
    sub_value: torch.Tensor
    master_logp: torch.Tensor
    master_value: torch.Tensor
    sub_bootstrap: torch.Tensor
    master_bootstrap: torch.Tensor

    @classmethod
    def allocate(cls, steps: int, num_envs: int, obs_dim: int, device: torch.device) -> MLSHRollout:
        def zeros(*shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
            return torch.zeros(steps, num_envs, *shape, dtype=dtype, device=device)

        long_fields = {"z", "action"}
        return cls(**{f.name: (zeros(obs_dim) if f.name == "obs" else zeros(dtype=torch.long)
                               if f.name in long_fields else zeros()) for f in fields(cls)})
