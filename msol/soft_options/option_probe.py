"""What each of MSOL's options does in Moving Bandits: follow it alone from the start and see which goal it reaches
(the env's probe, ``msol.envs.moving_bandits.follow_options``, with MSOL's greedy choice of action).

This is the diagnostic of MLSH's known failure (both options going to the same goal): with ``m`` options over many
random goal layouts, ``same_goal_fraction`` is how often all options end nearest the same goal.
"""

from __future__ import annotations

import numpy as np
import torch

from msol.envs import moving_bandits
from msol.soft_options.networks import HierarchicalPolicy


@torch.no_grad()
def moving_bandits_option_paths(policy: HierarchicalPolicy, layouts: int = 64, steps: int = 30, seed: int = 0,
                                slot: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy paths of every prior option (or, with ``slot``, of that slot's posterior options):
    ``(paths [m, layouts, steps+1, 2], goals [layouts, 2, 2])``."""

    def choose(obs: np.ndarray, option: np.ndarray) -> np.ndarray:
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=policy.device)
        if policy.encoder.trunk[0].in_features != obs_t.shape[1]:  # previous-action input: none at this probe
            pad = policy.encoder.trunk[0].in_features - obs_t.shape[1]
            obs_t = torch.cat([obs_t, obs_t.new_zeros(obs_t.shape[0], pad)], dim=1)
        z = torch.as_tensor(option, device=policy.device)
        f, f_prior = policy.option_features(policy.trunk(obs_t), z)
        if slot is None:
            logits = policy.prior_intra(f_prior)
        else:
            q_L, _ = policy.action_dists(f, f_prior, torch.full_like(z, slot), z, with_prior=False)
            logits = q_L.logits
        return logits.argmax(-1).cpu().numpy()

    return moving_bandits.follow_options(choose, policy.num_options, layouts=layouts, steps=steps, seed=seed)


def option_destinations(paths: np.ndarray, goals: np.ndarray) -> np.ndarray:
    """Index of the goal nearest to where each option ends: ``[m, layouts]``."""
    return moving_bandits.nearest_goal(paths[:, :, -1, :], goals)[0]


def same_goal_fraction(policy: HierarchicalPolicy, layouts: int = 256, seed: int = 0) -> float:
    """Fraction of random goal layouts in which every option heads to the same goal (MLSH's failure mode)."""
    paths, goals = moving_bandits_option_paths(policy, layouts=layouts, seed=seed)
    dest = option_destinations(paths, goals)
    return float(np.mean((dest == dest[0]).all(axis=0)))
