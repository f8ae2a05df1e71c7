"""Where a torch learner's tensors live: networks, rollouts and losses on ``cfg.device``; the envs stay numpy on the
CPU, and so do the random generators.

Every member of a population draws from its own CPU ``torch.Generator`` (initial weights, slot resets, sampling,
minibatch order) and the draws are then moved to the device, so a seed makes the same draws on every device: a run
on a GPU differs from the CPU run of its seed only by the devices' floating-point arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

Module = TypeVar("Module", bound=nn.Module)


def learner_device(cfg: DictConfig) -> torch.device:
    """``cfg.device`` (checked by ``msol.common.config_check``: ``cuda`` only where one is usable)."""
    return torch.device(str(cfg.device))


def env_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """An env array (observations, rewards, done flags) on a learner's ``device``, in torch's default dtype."""
    return torch.as_tensor(array, dtype=torch.get_default_dtype(), device=device)


def build_on_cpu(make: Callable[[], Module], device: torch.device) -> Module:
    """``make()`` initialised on the CPU (from the members' CPU generators), then moved to ``device``."""
    with torch.device("cpu"):
        module = make()
    return module.to(device)
