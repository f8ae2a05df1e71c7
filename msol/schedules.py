"""Annealing schedules for β and λ_H (spec/msol.md), as functions of frames per task."""

from __future__ import annotations


def linear(start: float, end: float, progress_frames: float, duration_frames: float) -> float:
    """``start`` → ``end`` linearly over ``duration_frames``, then held at ``end``."""
    if duration_frames <= 0:
        return end
    frac = min(max(progress_frames / duration_frames, 0.0), 1.0)
    return start + frac * (end - start)


def beta_schedule(frames: float, total: float, start: float, end: float, hold: float) -> float:
    """β anneals over option learning and is held at its final value for the last ``hold`` frames per task."""
    return linear(start, end, frames, total - hold)
