"""Environment side of Trust-PCL: collecting sub-episodes (the env and the greedy evaluation are
msol/common/single_env.py's, shared with TRPO)."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np

from msol.baselines.trust_pcl.replay import SubEpisode
from msol.common.single_env import ActFn, env_action


class SubEpisodeCollector:
    """Steps one env with the current policy and cuts the stream into sub-episodes of at most P steps.

    A sub-episode ends at the end of a ``collect`` call or when the episode ends, whichever comes first; the next
    call continues the same episode. Completed episodes' (return, length) are kept for λ (the last ``history``).
    """

    def __init__(self, env: gym.Env, seed: int, history: int = 100) -> None:
        self.env = env
        self.episodes: deque[tuple[float, int]] = deque(maxlen=history)
        self.obs, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        self.episode_return, self.episode_length = 0.0, 0

    def collect(self, act: ActFn, steps: int) -> tuple[list[SubEpisode], list[tuple[float, int]]]:
        """Run ``steps`` env steps; return the sub-episodes cut and the episodes that finished meanwhile."""
        sub_episodes: list[SubEpisode] = []
        finished: list[tuple[float, int]] = []
        observations, actions, rewards = [self.obs], [], []
        for step in range(steps):
            action = act(self.obs)
            next_obs, reward, terminated, truncated, _ = self.env.step(env_action(action, self.env.action_space))
            actions.append(action)
            rewards.append(float(reward))
            observations.append(next_obs)
            self.episode_return += float(reward)
            self.episode_length += 1
            self.obs = next_obs
            episode_over = terminated or truncated
            if episode_over or step == steps - 1:
                sub_episodes.append(SubEpisode(np.asarray(observations, dtype=np.float32), np.asarray(actions),
                                               np.asarray(rewards, dtype=np.float32), bool(terminated)))
            if episode_over:
                finished.append((self.episode_return, self.episode_length))
                self.episode_return, self.episode_length = 0.0, 0
                self.obs, _ = self.env.reset()
                observations, actions, rewards = [self.obs], [], []
        self.episodes.extend(finished)
        return sub_episodes, finished
