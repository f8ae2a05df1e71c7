"""stable-baselines3 agents for the ESS games: PPO, A2C and DQN with a linear or a 2×300 network (docs/spec/baselines.md).

Inputs are raw piece counts; a level-0 count reaches about ``p·2^K`` (≈ 5·10^5 at K = 20) while the decisive top
levels hold a piece or two, so every agent standardises each input with a per-feature mean and standard deviation
measured once, before training, on observations of the training environment under random play. The statistics
are fixed buffers of the network's first module (:class:`StandardizeObs`): they are saved with the weights, shared
by the supervised baseline, and keep the optimal defender linear in the network's input (a linear function of
``(x - mean) / std`` is linear in ``x``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "a2c": A2C, "dqn": DQN}
NETS = ("linear", "mlp")
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
LR_SCHEDULES = ("constant", "linear")


class StandardizeObs(BaseFeaturesExtractor):
    """``(x - mean) / std`` with fixed statistics stored as buffers (so they live in the state dict)."""

    def __init__(self, observation_space: gym.spaces.Box, mean: list[float], std: list[float]) -> None:
        super().__init__(observation_space, features_dim=int(np.prod(observation_space.shape)))
        # Built on the CPU with the rest of SB3's policy, which moves it to the model's device.
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32, device="cpu"))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32, device="cpu"))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations.flatten(1) - self.mean) / self.std


def observation_stats(env: gym.Env, n_steps: int = 2000, seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-feature mean and std of ``env``'s observations under uniformly random actions (std floored at 1 count:
    features that never vary, like level K, pass through unscaled)."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen = [obs]
    for _ in range(n_steps):
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
        seen.append(obs)
    data = np.asarray(seen, dtype=np.float64).reshape(len(seen), -1)
    return data.mean(axis=0).tolist(), np.maximum(data.std(axis=0), 1.0).tolist()


def _lr(lr: float, schedule: str) -> float | Callable[[float], float]:
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule={schedule!r}; valid: {', '.join(LR_SCHEDULES)}")
    return lr if schedule == "constant" else (lambda progress_remaining: lr * progress_remaining)


def make_agent(
    algo: str,
    env: VecEnv,
    *,
    net: str = "mlp",
    hidden: tuple[int, ...] = (300, 300),
    activation: str = "tanh",
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    obs_stats: tuple[list[float], list[float]],
    kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> BaseAlgorithm:
    """An SB3 model; ``kwargs`` go verbatim to the SB3 constructor (``n_steps``, ``clip_range``, ...)."""
    if algo not in ALGORITHMS:
        raise ValueError(f"algo={algo!r}; valid: {', '.join(ALGORITHMS)}")
    if net not in NETS:
        raise ValueError(f"net={net!r}; valid: {', '.join(NETS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}; valid: {', '.join(ACTIVATIONS)}")
    layers = list(hidden) if net == "mlp" else []
    policy_kwargs = {
        "features_extractor_class": StandardizeObs,
        "features_extractor_kwargs": {"mean": list(obs_stats[0]), "std": list(obs_stats[1])},
        "activation_fn": ACTIVATIONS[activation],
        "net_arch": layers if algo == "dqn" else {"pi": layers, "vf": layers},
    }
    return ALGORITHMS[algo](
        "MlpPolicy", env, learning_rate=_lr(lr, lr_schedule), policy_kwargs=policy_kwargs, seed=seed,
        device=device, verbose=0, **dict(kwargs or {}),
    )


def predictor(model: BaseAlgorithm, deterministic: bool = True) -> Callable[[np.ndarray], np.ndarray]:
    """``obs batch -> actions`` for the vectorised evaluators and for learned opponents."""

    def predict(obs: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(np.asarray(obs, dtype=np.float32), deterministic=deterministic)
        return np.asarray(actions).reshape(len(obs))

    return predict


def agent_state(model: BaseAlgorithm) -> dict[str, Any]:
    """What a checkpoint keeps of an agent: network weights (with the input statistics), optimiser, step count."""
    return {
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "num_timesteps": int(model.num_timesteps),
    }


def load_agent_state(model: BaseAlgorithm, state: Mapping[str, Any]) -> None:
    model.policy.load_state_dict(state["policy"])
    model.policy.optimizer.load_state_dict(state["optimizer"])
    model.num_timesteps = int(state["num_timesteps"])
