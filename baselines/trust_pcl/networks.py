"""Policy π_θ and value V_φ of Trust-PCL (paper appendix "Implementation"; docs/spec/baselines.md, Trust-PCL).

Both are 2×64 tanh MLPs. The policy is a categorical over logits for discrete actions and, for continuous actions,
a unimodal Gaussian with mean µ(s) and a learnable state-independent log-std ξ (std = exp(ξ)). The value network
sees the observation and its component-wise square ``[s, s⊙s]``, as in the paper's appendix.

The lagged prior π̃ and the target value V̄ are plain copies of these modules (see ``algorithm.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.Tanh()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """π_θ(a|s) for a ``Discrete`` or a 1-D ``Box`` action space."""

    def __init__(self, obs_dim: int, action_space: gym.Space, hidden: Sequence[int] = (64, 64),
                 log_std_init: float = 0.0) -> None:
        super().__init__()
        if isinstance(action_space, gym.spaces.Discrete):
            self.discrete = True
            self.net = mlp(obs_dim, hidden, int(action_space.n))
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.discrete = False
            self.net = mlp(obs_dim, hidden, action_space.shape[0])
            self.log_std = nn.Parameter(torch.full((action_space.shape[0],), float(log_std_init)))
        else:
            raise ValueError(f"action space {action_space} is not supported; valid: Discrete, 1-D Box")

    def distribution(self, obs: torch.Tensor) -> Distribution:
        return self._distribution(self.net(obs))

    def _distribution(self, out: torch.Tensor) -> Distribution:
        """π from the network's output ``out`` (logits or means), on ``out``'s device."""
        if self.discrete:
            return Categorical(logits=out, validate_args=False)
        std = self.log_std.exp().to(out.device).expand_as(out)
        return Independent(Normal(out, std, validate_args=False), 1, validate_args=False)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """ln π(a|s) with the shape of ``obs`` minus its feature axis."""
        return self.distribution(obs).log_prob(actions.long() if self.discrete else actions)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, greedy: bool = False) -> torch.Tensor:
        """An action on the CPU, for the env. Sampled there from torch's global CPU generator
        (``msol.common.device``): a seed acts alike on every device, and a checkpoint's generator state resumes it."""
        dist = self._distribution(self.net(obs).cpu())
        if not greedy:
            return dist.sample()
        return dist.probs.argmax(-1) if self.discrete else dist.mean


class Value(nn.Module):
    """V_φ(s) from ``[s, s⊙s]``."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.net = mlp(2 * obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, obs * obs], dim=-1)).squeeze(-1)
