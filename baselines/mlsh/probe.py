"""Where does each sub-policy go? The option-diversity probe for Moving Bandits (MLSH issue #9).

Every sub-policy is run alone for a whole episode on the same goal layouts; its destination on a layout is the goal
within the reward radius of its final position (or none). If every sub-policy heads for the same goal, the
master can only reach the correct goal half the time (≈ 21.9 instead of ≈ 43.8).
"""

from __future__ import annotations

import numpy as np
import torch

from baselines.mlsh.networks import MLSHPolicy
from envs.moving_bandits import ARENA, GOAL_RADIUS
from msol.envs_adapter import MultitaskEnv

NO_GOAL = -1


def destinations(final_obs: np.ndarray) -> np.ndarray:
    """Goal index (0/1) within the reward radius of each final position, else ``NO_GOAL``.

    Moving Bandits' observation is (agent x, y, goal0 x, y, goal1 x, y) / 400.
    """
    pos, goals = final_obs[:, None, :2], final_obs[:, 2:6].reshape(-1, 2, 2)
    dist = np.linalg.norm((goals - pos) * ARENA, axis=-1)  # (layouts, goal)
    nearest = dist.argmin(axis=1)
    reached = dist[np.arange(len(dist)), nearest] <= GOAL_RADIUS
    return np.where(reached, nearest, NO_GOAL)


@torch.no_grad()
def sub_policy_destinations(policy: MLSHPolicy, env: MultitaskEnv, seed: int) -> np.ndarray:
    """``[num_subs, num_envs]`` destination of each sub-policy on each of ``env``'s goal layouts (same seed each)."""
    out = np.empty((policy.num_subs, env.num_envs), dtype=np.int64)
    for k in range(policy.num_subs):
        obs = torch.as_tensor(env.reset(seed=seed), dtype=torch.float32)
        z = torch.full((env.num_envs,), k, dtype=torch.long)
        final = None
        while final is None:
            dist, _ = policy.sub(obs, z)
            step = env.step(dist.sample().numpy())
            if step.truncated.all() or step.terminated.all():
                final = step.final_obs
            obs = torch.as_tensor(step.obs, dtype=torch.float32)
        out[k] = destinations(final)
    return out


def diversity_metrics(dest: np.ndarray) -> dict[str, float]:
    """``options_same_goal``: share of layouts where two sub-policies reach the same goal;
    ``options_cover_both_goals``: share where the sub-policies together reach both goals (needed for 43.8);
    ``options_reach_goal``: share of (sub-policy, layout) pairs that end at some goal."""
    reached = dest != NO_GOAL
    same = np.zeros(dest.shape[1], dtype=bool)
    for i in range(dest.shape[0]):
        for j in range(i + 1, dest.shape[0]):
            same |= reached[i] & (dest[i] == dest[j])
    both = np.stack([(dest == g).any(axis=0) for g in (0, 1)]).all(axis=0)
    return {"options_same_goal": float(same.mean()), "options_cover_both_goals": float(both.mean()),
            "options_reach_goal": float(reached.mean())}
