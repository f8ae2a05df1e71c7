"""Replay buffer of sub-episodes, sampled by recency (paper §4.2 "Off-policy"; docs/spec/baselines.md, Trust-PCL).

Each entry is a sub-episode of at most ``length`` (= P, the env steps collected per training step) transitions:
``s_0, a_0, r_0, ..., s_{T-1}, a_{T-1}, r_{T-1}, s_T`` with T ≤ P (shorter when the episode ended inside the
chunk), plus whether ``s_T`` is terminal (its value is then 0). Its priority is the training step at which it was
inserted, and a batch draws entries with probability ∝ exp(β·(insert step − newest insert step)), β = 0.001: the
newest data is favoured, data 1/β training steps old is e times less likely. No importance weights: the path
consistencies hold along any path, so off-policy data needs no correction. Full buffer: first in, first out.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch


@dataclass
class SubEpisode:
    observations: np.ndarray  # [T+1, obs_dim]
    actions: np.ndarray       # [T] (discrete) or [T, act_dim]
    rewards: np.ndarray       # [T]
    terminated: bool          # s_T is a terminal state

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass
class SubEpisodeBatch:
    """``B`` sub-episodes padded to P steps; ``mask[b, t]`` is 1 for the real steps t < lengths[b]."""

    observations: torch.Tensor  # [B, P+1, obs_dim]
    actions: torch.Tensor       # [B, P] or [B, P, act_dim]
    rewards: torch.Tensor       # [B, P]
    mask: torch.Tensor          # [B, P]
    lengths: torch.Tensor       # [B] long
    terminated: torch.Tensor    # [B] bool

    def to(self, device: torch.device) -> SubEpisodeBatch:
        """The batch on ``device`` (the replay buffer is numpy, on the CPU)."""
        return SubEpisodeBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class SubEpisodeReplay:
    """FIFO ring buffer of ``capacity`` sub-episodes with recency-prioritised sampling."""

    def __init__(self, capacity: int, length: int, obs_dim: int, action_shape: tuple[int, ...],
                 discrete: bool, recency: float, seed: int = 0) -> None:
        if capacity < 1 or length < 1:
            raise ValueError(f"capacity={capacity} and length={length} must both be >= 1")
        self.capacity, self.length, self.recency = capacity, length, float(recency)
        self.observations = np.zeros((capacity, length + 1, obs_dim), dtype=np.float32)
        self.actions = np.zeros((capacity, length, *action_shape), dtype=np.int64 if discrete else np.float32)
        self.rewards = np.zeros((capacity, length), dtype=np.float32)
        self.lengths = np.zeros(capacity, dtype=np.int64)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.insert_step = np.zeros(capacity, dtype=np.int64)
        self.size = 0
        self.cursor = 0
        self.rng = np.random.default_rng(seed)

    def add(self, sub_episode: SubEpisode, insert_step: int) -> None:
        steps = len(sub_episode)
        if not 1 <= steps <= self.length:
            raise ValueError(f"sub-episode has {steps} steps; valid: 1..{self.length}")
        i = self.cursor
        self.observations[i] = 0.0
        self.actions[i] = 0
        self.rewards[i] = 0.0
        self.observations[i, : steps + 1] = sub_episode.observations
        self.actions[i, :steps] = sub_episode.actions
        self.rewards[i, :steps] = sub_episode.rewards
        self.lengths[i] = steps
        self.terminated[i] = sub_episode.terminated
        self.insert_step[i] = insert_step
        self.cursor = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def probabilities(self) -> np.ndarray:
        """Sampling probability of each stored entry (index order of the storage arrays)."""
        steps = self.insert_step[: self.size]
        logits = self.recency * (steps - steps.max())
        weights = np.exp(logits)
        return weights / weights.sum()

    def sample_indices(self, batch_size: int) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.rng.choice(self.size, size=batch_size, replace=True, p=self.probabilities())

    def sample(self, batch_size: int) -> SubEpisodeBatch:
        idx = self.sample_indices(batch_size)
        lengths = self.lengths[idx]
        mask = np.arange(self.length)[None, :] < lengths[:, None]
        return SubEpisodeBatch(
            observations=torch.from_numpy(self.observations[idx]),
            actions=torch.from_numpy(self.actions[idx]),
            rewards=torch.from_numpy(self.rewards[idx]),
            mask=torch.from_numpy(mask.astype(np.float32)),
            lengths=torch.from_numpy(lengths),
            terminated=torch.from_numpy(self.terminated[idx]),
        )

    # -------------------------------------------------------------- checkpoints (tensors only, see msol/common/run.py)
    _ARRAYS = ("observations", "actions", "rewards", "lengths", "terminated", "insert_step")

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: torch.from_numpy(getattr(self, name)[: self.size].copy())
                                 for name in self._ARRAYS}
        state.update(size=self.size, cursor=self.cursor, rng=self.rng.bit_generator.state)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.cursor = int(state["size"]), int(state["cursor"])
        for name in self._ARRAYS:
            getattr(self, name)[: self.size] = state[name].cpu().numpy()
        self.rng.bit_generator.state = state["rng"]
