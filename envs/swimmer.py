"""Directional Swimmer (MSOL paper Fig. 2f; spec: envs.md, "Directional Swimmer").

gymnasium's MuJoCo ``Swimmer-v5`` with the forward reward replaced by the velocity of the front tip along a task
direction (up, down, left, right), plus small additive Gaussian action noise. The direction is the task: it is NOT
in the observation, and neither are the x, y positions (they would leak it), so only a task-aware master can tell
the tasks apart.

Choices the paper leaves open (documented here and in the class docstring):

- ``action_noise_std = 0.1`` by default: the paper says "a small amount of additive action noise" without a value.
  0.1 is 5% of the [-1, 1] torque range: enough that a policy cannot rely on open-loop exact torques, small
  compared with the torques a swimming gait uses. The noisy action is clipped to the action bounds (MuJoCo clamps
  it to ``ctrlrange`` anyway); the control cost is charged on the agent's commanded action, since the noise is the
  environment's doing, not effort the agent chose.
- ``mode``: the four tasks and the start distribution are the same for training and testing (the paper has no
  held-out swimmer tasks); ``mode`` is validated and kept so every multitask env shares one constructor shape.
- Episode length: 1000 steps comes from the registration (``max_episode_steps=1000``), as for ``Swimmer-v5``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco.swimmer_v5 import SwimmerEnv

TASK_DIRECTIONS: dict[str, tuple[float, float]] = {
    "up": (0.0, 1.0),
    "down": (0.0, -1.0),
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
}
MODES = ("train", "test")
DEFAULT_ACTION_NOISE_STD = 0.1


class DirectionalSwimmerEnv(SwimmerEnv):
    """Swimmer rewarded for swimming in an unobserved task direction.

    Args:
        task: one of ``env.tasks`` ("up", "down", "left", "right"), or ``None`` to draw a task uniformly (from the
            env's seeded RNG) at every reset.
        mode: "train" or "test" (identical for this env; see the module docstring).
        action_noise_std: standard deviation of the additive Gaussian action noise (0 disables it).
        **swimmer_kwargs: passed to gymnasium's ``SwimmerEnv`` (e.g. ``ctrl_cost_weight``, ``render_mode``).

    Reward: ``forward_reward_weight * <(x_velocity, y_velocity), direction> - ctrl_cost_weight * |action|^2``.
    ``info`` adds ``task`` (its name) and ``reward_direction`` to Swimmer's keys.
    """

    tasks: tuple[str, ...] = tuple(TASK_DIRECTIONS)

    def __init__(
        self,
        task: str | None = None,
        mode: str = "train",
        action_noise_std: float = DEFAULT_ACTION_NOISE_STD,
        **swimmer_kwargs: Any,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not valid; valid modes: {', '.join(MODES)}")
        if not (np.isfinite(action_noise_std) and action_noise_std >= 0):
            raise ValueError(f"action_noise_std={action_noise_std!r} must be a finite number >= 0")
        self._validate_task(task)
        super().__init__(**swimmer_kwargs)
        utils.EzPickle.__init__(self, task, mode, action_noise_std, **swimmer_kwargs)
        self.mode = mode
        self.action_noise_std = float(action_noise_std)
        self._requested_task = task
        self.task: str = task if task is not None else self.tasks[0]

    @classmethod
    def _validate_task(cls, task: str | None) -> None:
        if task is not None and task not in TASK_DIRECTIONS:
            raise ValueError(f"task={task!r} is not valid; valid tasks: {', '.join(cls.tasks)} (or None: random)")

    def set_task(self, task: str | None) -> None:
        """Use ``task`` from the next reset on (``None``: a uniformly drawn task at every reset)."""
        self._validate_task(task)
        self._requested_task = task

    def reset_model(self) -> np.ndarray:
        # Called by reset() after np_random is seeded, so a randomly drawn task is reproducible from the seed.
        if self._requested_task is None:
            self.task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        else:
            self.task = self._requested_task
        return super().reset_model()

    def _get_reset_info(self) -> dict[str, Any]:
        return {"task": self.task}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        noisy = action
        if self.action_noise_std > 0:
            noisy = action + self.np_random.normal(0.0, self.action_noise_std, size=action.shape)
            noisy = np.clip(noisy, self.action_space.low, self.action_space.high)
        obs, _, terminated, truncated, info = super().step(noisy)

        velocity = np.array([info["x_velocity"], info["y_velocity"]])
        direction_reward = self._forward_reward_weight * float(velocity @ TASK_DIRECTIONS[self.task])
        ctrl_cost = self.control_cost(action)
        info.pop("reward_forward")
        info.update(task=self.task, reward_direction=direction_reward, reward_ctrl=-ctrl_cost)
        return obs, direction_reward - ctrl_cost, terminated, truncated, info
