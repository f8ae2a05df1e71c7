"""The supervised baseline (ESS paper §5): the RL agent's own network, trained to classify the optimal move on exactly
the states the RL agent visited during training.

Labels come from the closed form (destroy the set of higher potential); ties are left out of the data set because
both moves are optimal there. The network — architecture, input standardisation and all — is a fresh copy of the RL
agent's policy, so the two differ only in how they were trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy

from msol.envs.ess import game


class VisitedObservations(BaseCallback):
    """Every observation the agent acted on while training (first ``max_obs`` of them)."""

    def __init__(self, max_obs: int = 500_000) -> None:
        super().__init__()
        self.max_obs = max_obs
        self._chunks: list[np.ndarray] = []
        self._count = 0

    def _add(self, obs: np.ndarray) -> None:
        room = self.max_obs - self._count
        if room > 0:
            chunk = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)[:room]
            self._chunks.append(chunk)
            self._count += len(chunk)

    def _on_training_start(self) -> None:
        if self._count == 0:
            self._add(self.model._last_obs)

    def _on_step(self) -> bool:
        self._add(self.locals["new_obs"])
        return True

    @property
    def observations(self) -> np.ndarray:
        return np.concatenate(self._chunks) if self._chunks else np.zeros((0, 0), dtype=np.float32)

    def restore(self, observations: np.ndarray) -> None:
        self._chunks, self._count = [np.asarray(observations, dtype=np.float32)], len(observations)


def optimal_labels(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(label, decisive)`` for defender observations concat(A, B): label 0 = destroy A; ties are not decisive."""
    counts = np.rint(observations).astype(np.int64)
    A, B = np.split(counts, 2, axis=-1)
    ua, ub = game.potential_units(A), game.potential_units(B)
    return np.where(ua > ub, game.DESTROY_A, game.DESTROY_B), ua != ub


def _action_logits(policy: BasePolicy, obs: torch.Tensor) -> torch.Tensor:
    if hasattr(policy, "q_net"):  # DQN: Q-values act as logits
        return policy.q_net(obs)
    return policy.get_distribution(obs).distribution.logits


def train_supervised(
    rl_model: BaseAlgorithm,
    observations: np.ndarray,
    *,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> tuple[BasePolicy, dict[str, Any]]:
    """A fresh copy of ``rl_model``'s policy network trained by cross-entropy on the optimal moves.

    Returns the policy (``policy.predict`` plays like an SB3 model) and the training summary (data set size,
    train and held-out accuracy).
    """
    labels, decisive = optimal_labels(observations)
    x, y = observations[decisive], labels[decisive]
    if len(x) < 2:
        raise ValueError(f"need at least 2 decisive (non-tie) observations to train on; got {len(x)}")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    policy = type(rl_model.policy)(rl_model.observation_space, rl_model.action_space, lambda _: lr,
                                   **rl_model.policy_kwargs).to(rl_model.device)
    rl_stats = {k: v for k, v in rl_model.policy.state_dict().items()
                if "features_extractor." in k and k.endswith((".mean", ".std"))}
    policy.load_state_dict(rl_stats, strict=False)  # the same input standardisation as the RL agent
    perm = torch.randperm(len(x), generator=generator, device="cpu").numpy()
    n_val = int(len(x) * validation_fraction)
    val, train = perm[:n_val], perm[n_val:]
    x_t, y_t = torch.as_tensor(x, device=rl_model.device), torch.as_tensor(y, device=rl_model.device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = train[torch.randperm(len(train), generator=generator, device="cpu").numpy()]
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(_action_logits(policy, x_t[idx]), y_t[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    policy.set_training_mode(False)
    with torch.no_grad():
        def accuracy(idx: np.ndarray) -> float:
            if len(idx) == 0:
                return float("nan")
            return float((_action_logits(policy, x_t[idx]).argmax(-1) == y_t[idx]).float().mean())

        summary = {"dataset_size": len(observations), "decisive_examples": len(x),
                   "train_accuracy": accuracy(train), "validation_accuracy": accuracy(val)}
    return policy, summary
