"""The bridge between an SB3 ``learn()`` loop and msol's run directory: metrics rows, evaluations, checkpoints and
the console bar, all keyed by the run's global frame counter."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from msol.baselines.ess.agents import agent_state


class RunCallback(BaseCallback):
    """Logs training rows every ``log_interval`` frames, evaluation rows every ``eval_interval`` frames, and writes
    ``checkpoints/latest.pt`` every ``checkpoint_interval_s`` seconds.

    ``step_offset`` shifts the model's own step count onto the run's global one (multi-agent phases); ``state``
    returns the checkpoint payload (default: this agent's weights, optimiser and step count).
    """

    def __init__(
        self,
        run: Any,
        *,
        phase: str,
        log_interval: int,
        eval_interval: int,
        checkpoint_interval_s: float,
        evaluate: Callable[[], dict[str, Any]],
        state: Callable[[], dict[str, Any]] | None = None,
        step_offset: int = 0,
    ) -> None:
        super().__init__()
        self.run, self.phase = run, phase
        self.log_interval, self.eval_interval = int(log_interval), int(eval_interval)
        self.checkpoint_interval_s = float(checkpoint_interval_s)
        self.evaluate, self._state = evaluate, state
        self.step_offset = step_offset
        self.returns: deque[float] = deque(maxlen=100)
        self.lengths: deque[int] = deque(maxlen=100)
        self.episodes = 0

    # the run's frame counter for the model's current step count
    @property
    def step(self) -> int:
        return self.step_offset + int(self.model.num_timesteps)

    def state(self) -> dict[str, Any]:
        payload = self._state() if self._state is not None else {"agent": agent_state(self.model)}
        return payload | {"wall_time_s": self.run.elapsed()}

    def _on_training_start(self) -> None:
        done = int(self.model.num_timesteps)
        self._last_frames = done
        self._next_log = (done // self.log_interval + 1) * self.log_interval
        self._next_eval = (done // self.eval_interval + 1) * self.eval_interval
        self._last_save = time.time()

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            if "episode" in info:  # added by SB3's Monitor wrapper at the end of every episode
                self.returns.append(float(info["episode"]["r"]))
                self.lengths.append(int(info["episode"]["l"]))
                self.episodes += 1
        frames = int(self.model.num_timesteps)
        self.run.progress(frames - self._last_frames, reward=self._mean(self.returns))
        self._last_frames = frames
        if frames >= self._next_log:
            self._next_log += self.log_interval
            self.run.log(self.step, self._train_row(), phase=self.phase)
        if frames >= self._next_eval:
            self._next_eval += self.eval_interval
            self.run.log(self.step, self.evaluate(), phase="eval")
        if time.time() - self._last_save >= self.checkpoint_interval_s:
            self.run.save_checkpoint(self.state())
            self._last_save = time.time()
        return True

    @staticmethod
    def _mean(values) -> float:
        return float(np.mean(values)) if values else float("nan")

    def _train_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "episodes": self.episodes,
            "mean_reward": self._mean(self.returns),
            "win_rate": self._mean([r > 0 for r in self.returns]),
            "mean_episode_length": self._mean(self.lengths),
        }
        for key, value in self.model.logger.name_to_value.items():  # SB3's latest losses, entropy, ...
            if key.startswith("train/"):
                row[key.removeprefix("train/")] = float(value)
        return row
