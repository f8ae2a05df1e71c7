"""Where does each sub-policy go? The option-diversity probe for Moving Bandits (MLSH issue #9).

Every sub-policy is run alone and greedily for a whole episode on the same goal layouts. Its destination on a layout
is the goal nearest to its final position (the definition of ``msol.soft_options.option_probe``, so MLSH and MSOL are measured
alike), and it *reaches* it when it ends within the reward radius. If every sub-policy heads for the same goal,
the master can only reach the correct goal half the time (≈ 21.9 instead of ≈ 43.8).
"""

from __future__ import annotations

import numpy as np
import torch

from msol.baselines.mlsh.networks import MLSHPolicy
from msol.common.device import env_tensor
from msol.common.envs_adapter import MultitaskEnv
from msol.envs import moving_bandits
from msol.envs.moving_bandits import ARENA, GOAL_RADIUS


def destinations(final_obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(nearest goal index, within the reward radius of it)`` of each final position.

    Moving Bandits' observation is (agent x, y, goal0 x, y, goal1 x, y) / 400.
    """
    positions, goals = final_obs[:, :2] * ARENA, final_obs[:, 2:6].reshape(-1, 2, 2) * ARENA
    nearest, distance = moving_bandits.nearest_goal(positions, goals)
    return nearest, distance <= GOAL_RADIUS


@torch.no_grad()
def sub_policy_destinations(policy: MLSHPolicy, env: MultitaskEnv, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(nearest, reached)``, each ``[num_subs, num_envs]``: every sub-policy, greedily, on ``env``'s layouts."""
    nearest = np.empty((policy.num_subs, env.num_envs), dtype=np.int64)
    reached = np.empty((policy.num_subs, env.num_envs), dtype=bool)
    device = policy.device
    for k in range(policy.num_subs):
        obs = env_tensor(env.reset(seed=seed), device)  # the same layouts for every k
        z = torch.full((env.num_envs,), k, dtype=torch.long, device=device)
        while True:
            dist, _ = policy.sub(obs, z)
            step = env.step(dist.logits.argmax(-1).cpu().numpy())
            if (step.terminated | step.truncated).all():
                break
            obs = env_tensor(step.obs, device)
        nearest[k], reached[k] = destinations(step.final_obs)
    return nearest, reached


def diversity_metrics(nearest: np.ndarray, reached: np.ndarray) -> dict[str, float]:
    """From ``[num_subs, layouts]`` destinations:

    * ``options_same_goal``: share of layouts where every sub-policy ends nearest the same goal
      (``msol.soft_options.option_probe.same_goal_fraction``'s definition);
    * ``options_cover_both_goals``: share where the sub-policies together reach both goals (43.8 needs it);
    * ``options_reach_goal``: share of (sub-policy, layout) pairs that end within the radius of a goal.
    """
    same = (nearest == nearest[0]).all(axis=0)
    both = np.stack([((nearest == g) & reached).any(axis=0) for g in (0, 1)]).all(axis=0)
    return {"options_same_goal": float(same.mean()), "options_cover_both_goals": float(both.mean()),
            "options_reach_goal": float(reached.mean())}
