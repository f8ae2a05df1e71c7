"""Environment side of Trust-PCL: making a flat-observation env, collecting sub-episodes, greedy evaluation.

Also used by the TRPO baseline (``baselines/trpo.py``) so both algorithms see the same environments and the same
evaluation protocol (the paper reports the reward of greedy actions).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from msol.baselines.trust_pcl.replay import SubEpisode

ActFn = Callable[[np.ndarray], np.ndarray]


def make_env(env_id: str, kwargs: Mapping[str, Any] | None = None) -> gym.Env:
    """``gymnasium.make`` (``msol/...`` ids included) with observations flattened to a float vector."""
    from msol import envs  # noqa: F401  (registers the msol/* environments)

    env = gym.make(env_id, **dict(kwargs or {}))
    if not (isinstance(env.observation_space, gym.spaces.Box) and len(env.observation_space.shape) == 1):
        env = gym.wrappers.FlattenObservation(env)
    return env


def env_action(action: np.ndarray, space: gym.Space) -> np.ndarray | int:
    """What the env receives: Gaussian samples are clipped to the Box (the stored action stays unclipped)."""
    if isinstance(space, gym.spaces.Box):
        return np.clip(action, space.low, space.high)
    return int(action)


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


def evaluate(act: ActFn, env: gym.Env, episodes: int, seed: int) -> tuple[float, float]:
    """Mean and standard deviation of the undiscounted return of ``episodes`` episodes of ``act``."""
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(env_action(act(obs), env.action_space))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns))
