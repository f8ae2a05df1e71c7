"""Annealing schedules for β and λ_H (docs/spec/msol.md), as functions of frames per task."""

from __future__ import annotations


def linear(start: float, end: float, progress_frames: float, duration_frames: float) -> float:
    """``start`` → ``end`` linearly over ``duration_frames``, then held at ``end``."""
    if duration_frames <= 0:
        return end
    frac = min(max(progress_frames / duration_frames, 0.0), 1.0)
    return start + frac * (end - start)


def anneal_then_hold(frames: float, total: float, start: float, end: float, hold: float) -> float:
    """β and λ_H anneal over option learning and are held at their final values for its last ``hold`` frames per
    task (the authors' ``final_period_frames``)."""
    return linear(start, end, frames, total - hold)
