"""Trust-PCL's training iteration (paper Algorithm 1, off-policy variant), one env + one learner, no Run needed.

Every iteration: collect P = 10 env steps with the online policy π_θ and store them as sub-episodes, refresh λ
from the last 100 completed episodes, take one gradient step on Q = 64 sub-episodes sampled by recency, then move
the lagged prior π̃ and target V̄ one step towards the online networks.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from msol.baselines.trust_pcl.algorithm import TrustPCL, TrustPCLConfig
from msol.baselines.trust_pcl.collector import SubEpisodeCollector
from msol.baselines.trust_pcl.replay import SubEpisodeReplay


class TrustPCLTrainer:
    """Owns the learner, the replay buffer and the env stream; ``iteration()`` is one training step."""

    def __init__(self, env: gym.Env, config: TrustPCLConfig, seed: int = 0, device: torch.device | str = "cpu"
                 ) -> None:
        torch.manual_seed(seed)
        self.config = config
        space = env.action_space
        discrete = isinstance(space, gym.spaces.Discrete)
        obs_dim = int(np.prod(env.observation_space.shape))
        self.agent = TrustPCL(obs_dim, space, config, device)
        self.replay = SubEpisodeReplay(config.replay_size, config.collect_steps, obs_dim,
                                       () if discrete else space.shape, discrete, config.recency, seed=seed)
        self.collector = SubEpisodeCollector(env, seed=seed, history=config.kl_episodes)
        self.train_step = 0
        self.env_steps = 0
        self.lam_new = self.agent.lam

    def iteration(self) -> tuple[dict[str, float], list[tuple[float, int]]]:
        """One training step; returns the learner's metrics and the episodes (return, length) that finished."""
        cfg, agent = self.config, self.agent

        # 1. Collect P steps with π_θ; each sub-episode's priority is the current training step.
        sub_episodes, finished = self.collector.collect(agent.act, cfg.collect_steps)
        for sub_episode in sub_episodes:
            self.replay.add(sub_episode, insert_step=self.train_step)
        self.env_steps += cfg.collect_steps

        # 2. λ: re-solved when the set of recent episodes changes, smoothed every step.
        if finished:
            returns, lengths = zip(*self.collector.episodes)
            self.lam_new = agent.lambda_target(returns, lengths)
        agent.smooth_lambda(self.lam_new)

        # 3. One gradient step on Q sub-episodes (recency-prioritised, no importance weights).
        metrics = agent.update(self.replay.sample(cfg.batch_size))

        # 4. θ̃ ← αθ̃ + (1−α)θ, φ̄ ← αφ̄ + (1−α)φ.
        agent.update_lagged()
        self.train_step += 1
        return metrics, finished

    # -------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything but the env's internal state: a resumed run starts a fresh episode."""
        return {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "episodes": [list(e) for e in self.collector.episodes],
            "train_step": self.train_step,
            "env_steps": self.env_steps,
            "lam_new": self.lam_new,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        self.collector.episodes.clear()
        self.collector.episodes.extend((float(r), int(n)) for r, n in state["episodes"])
        self.train_step, self.env_steps = int(state["train_step"]), int(state["env_steps"])
        self.lam_new = float(state["lam_new"])
        torch.set_rng_state(state["torch_rng"])
