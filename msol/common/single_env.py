"""The run-directory side of a learner on ONE gymnasium env (Trust-PCL, TRPO): the env, the same rows, greedy
evaluation and wall-clock checkpoints for both, so their curves compare like for like.

Rows written through ``msol.common.run.Run.log`` (``step`` = env steps so far):

- phase "train", every ``logger.log_interval_frames_per_task`` env steps: ``frames``, ``frames_per_task``,
  ``episode_return`` / ``episode_length`` (mean over the episodes finished since the previous row, NaN if none),
  ``episodes``, ``wall_time_s``, ``fps`` and the algorithm's own metrics;
- phase "eval", every ``eval.interval_frames_per_task`` env steps and at the end: ``eval_return`` (mean undiscounted
  return of greedy actions, the paper's protocol) and ``eval_return_std`` over ``eval.episodes_per_slot`` episodes,
  on a separate env (``env.eval_mode`` if the env has modes).

One env is one task stream here, so ``frames_per_task`` equals ``frames`` (on a multitask env the single policy
trains on the task mixture the env draws). The ESS agents (SB3) keep rows of their own (game metrics such as win
rates against fixed opponents, per side of a multi-agent phase): ``msol.baselines.ess.callbacks``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig, OmegaConf

from msol.common.run import Run

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


def env_kwargs(env_cfg: DictConfig, purpose: str) -> dict[str, Any]:
    """``env.kwargs`` plus ``mode=env.<purpose>_mode`` for our multitask envs (purpose: "train" or "eval")."""
    raw = env_cfg.get("kwargs")
    kwargs = dict(OmegaConf.to_container(raw, resolve=True)) if raw else {}
    mode = env_cfg.get(f"{purpose}_mode")
    if mode is not None:
        kwargs.setdefault("mode", mode)
    return kwargs


def make_run_env(cfg: DictConfig, purpose: str) -> gym.Env:
    if not cfg.env.get("id"):
        raise ValueError(f"env.id={cfg.env.get('id')!r}: give a gymnasium id, e.g. env=gym env.id=Pendulum-v1")
    return make_env(str(cfg.env.id), env_kwargs(cfg.env, purpose))


def total_frames(cfg: DictConfig) -> int:
    return int(float(cfg.algo.total_frames) * float(cfg.get("budget_scale", 1.0)))


class Reporter:
    """Progress bar, train/eval rows and wall-clock checkpoints for a single-env training loop."""

    def __init__(self, cfg: DictConfig, run: Run, greedy_act: ActFn) -> None:
        self.cfg, self.run, self.greedy_act = cfg, run, greedy_act
        self.total = total_frames(cfg)
        self.log_every = int(cfg.logger.log_interval_frames_per_task)
        self.eval_every = int(cfg.eval.interval_frames_per_task)
        self.eval_episodes = int(cfg.eval.episodes_per_slot)
        self.checkpoint_interval = float(cfg.checkpoint_interval_s)
        self.eval_env = make_run_env(cfg, "eval")
        self.frames = 0
        self.episodes = 0
        self.pending: list[tuple[float, int]] = []
        self.last_eval: tuple[float, float] = (math.nan, math.nan)
        self.best_eval = -math.inf
        self._last_checkpoint = time.monotonic()
        self._last_row = (time.monotonic(), 0)

    def start(self, frames: int, desc: str) -> None:
        self.frames = frames
        self._last_row = (time.monotonic(), frames)
        self.run.start_progress(self.total, initial=frames, desc=desc)

    def advance(self, frames: int, finished: list[tuple[float, int]], metrics: Mapping[str, float]) -> None:
        """Record progress up to ``frames`` env steps; write the rows whose interval was crossed."""
        previous, self.frames = self.frames, frames
        self.pending.extend(finished)
        self.episodes += len(finished)
        recent = self.pending[-1][0] if self.pending else None
        self.run.progress(frames - previous, **({"return": recent} if recent is not None else {}))
        if frames // self.log_every > previous // self.log_every:
            self.log_train(metrics)
        if frames // self.eval_every > previous // self.eval_every:
            self.log_eval()

    def log_train(self, metrics: Mapping[str, float]) -> None:
        now = time.monotonic()
        returns = [r for r, _ in self.pending]
        lengths = [n for _, n in self.pending]
        row = {
            "frames": self.frames, "frames_per_task": self.frames,
            "episode_return": float(np.mean(returns)) if returns else math.nan,
            "episode_length": float(np.mean(lengths)) if lengths else math.nan,
            "episodes": self.episodes, "wall_time_s": self.run.elapsed(),
            "fps": (self.frames - self._last_row[1]) / max(now - self._last_row[0], 1e-9),
            **metrics,
        }
        self.run.log(self.frames, row, phase="train")
        self.pending.clear()
        self._last_row = (now, self.frames)

    def log_eval(self) -> None:
        seed = int(self.cfg.seed) * 1_000_003 + 10_000
        self.last_eval = evaluate(self.greedy_act, self.eval_env, self.eval_episodes, seed=seed)
        self.best_eval = max(self.best_eval, self.last_eval[0])
        self.run.log(self.frames, {"frames": self.frames, "frames_per_task": self.frames,
                                   "eval_return": self.last_eval[0], "eval_return_std": self.last_eval[1],
                                   "wall_time_s": self.run.elapsed()}, phase="eval")

    def maybe_checkpoint(self, state: Callable[[], dict[str, Any]], force: bool = False) -> None:
        if force or time.monotonic() - self._last_checkpoint >= self.checkpoint_interval:
            self.run.save_checkpoint({**state(), "reporter": self.state_dict(),
                                      "wall_time_s": self.run.elapsed()})
            self._last_checkpoint = time.monotonic()

    def finish(self, state: Callable[[], dict[str, Any]]) -> dict[str, float]:
        """Final evaluation (unless one just ran at this frame count), final checkpoint, summary metrics."""
        if self.frames % self.eval_every != 0 or math.isnan(self.last_eval[0]):
            self.log_eval()
        self.maybe_checkpoint(state, force=True)
        self.run.close_progress()
        return {"objective": self.last_eval[0], "final_eval_return": self.last_eval[0],
                "final_eval_return_std": self.last_eval[1], "best_eval_return": self.best_eval,
                "frames": self.frames, "episodes": self.episodes}

    def state_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "pending": [list(p) for p in self.pending],
                "last_eval": list(self.last_eval), "best_eval": self.best_eval}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episodes = int(state["episodes"])
        self.pending = [(float(r), int(n)) for r, n in state["pending"]]
        self.last_eval = (float(state["last_eval"][0]), float(state["last_eval"][1]))
        self.best_eval = float(state["best_eval"])
