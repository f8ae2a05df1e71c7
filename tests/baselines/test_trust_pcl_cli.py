"""``algo=trust_pcl`` through msol.train: run directory, rows, checkpoints, resume; any gymnasium env and ours."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hydra import compose, initialize_config_module

import msol.common.algorithms
from msol import envs  # noqa: F401  (registers msol/* ids)
from msol.baselines.trust_pcl import TrustPCLConfig, TrustPCLTrainer
from msol.common.single_env import make_env
from msol.train import train


def run_train(monkeypatch: pytest.MonkeyPatch, run_dir: Path, overrides: list[str]) -> dict:
    """``python -m msol.train <overrides>`` in-process, loading only the Trust-PCL/TRPO plugins.

    Loading only these keeps the test about them (other plugins are tested in their own files).
    """
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(msol.common.algorithms, "_plugin_modules", lambda: ("msol.baselines.trust_pcl", "msol.baselines.trpo"))
    monkeypatch.setattr(msol.common.algorithms, "_loaded", False)
    with initialize_config_module("msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return train(cfg, run_dir=run_dir)


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def resume_and_check(monkeypatch: pytest.MonkeyPatch, run_dir: Path, overrides: list[str],
                     new_train_steps: list[int]) -> dict:
    """Resume ``run_dir``; the old rows stay as they were and the new train rows have ``new_train_steps``."""
    rows = read_rows(run_dir)
    summary = run_train(monkeypatch, run_dir, [*overrides, f"resume={run_dir}"])
    rows_after = read_rows(run_dir)
    assert rows_after[: len(rows)] == rows
    assert [r["step"] for r in rows_after[len(rows):] if r["phase"] == "train"] == new_train_steps
    assert summary["frames"] == new_train_steps[-1]
    return summary


SMALL = ["eval.episodes_per_slot=1", "env.hparams.log_interval_frames_per_task=200",
         "env.hparams.eval_interval_frames_per_task=500"]


def test_acrobot_run_writes_rows_checkpoint_and_resumes(monkeypatch, tmp_path):
    run_dir = tmp_path / "run"
    summary = run_train(monkeypatch, run_dir, ["env=acrobot", "algo=trust_pcl", "algo.total_frames=1000", *SMALL])
    rows = read_rows(run_dir)
    train_rows = [r for r in rows if r["phase"] == "train"]
    assert [r["step"] for r in train_rows] == [200, 400, 600, 800, 1000]
    assert [r["step"] for r in rows if r["phase"] == "eval"] == [500, 1000]
    assert all(math.isfinite(r["huber_loss"]) and r["lambda"] >= 0 for r in train_rows)
    assert train_rows[-1]["episodes"] == 2                     # Acrobot's 500-step cut-off, random policy
    assert summary["frames"] == 1000 and summary["objective"] == rows[-1]["eval_return"]
    assert (run_dir / "checkpoints" / "latest.pt").exists() and (run_dir / "summary.json").exists()

    resume_and_check(monkeypatch, run_dir, ["env=acrobot", "algo=trust_pcl", "algo.total_frames=1400", *SMALL],
                     new_train_steps=[1200, 1400])


def test_continuous_gym_env_by_id(monkeypatch, tmp_path):
    summary = run_train(monkeypatch, tmp_path / "run", ["env=gym", "env.id=Pendulum-v1", "algo=trust_pcl",
                                                        "algo.total_frames=400", *SMALL])
    rows = read_rows(tmp_path / "run")
    assert "log_std_mean" in rows[0] and summary["frames"] == 400
    assert -2000 < summary["objective"] < 0                    # 200 steps of Pendulum's negative cost


def test_missing_env_id_is_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="env.id=None"):
        run_train(monkeypatch, tmp_path / "run", ["env=gym", "algo=trust_pcl", "algo.total_frames=100"])


MULTITASK_IDS = sorted(i for i in gym.registry if i.startswith("msol/")) or ["msol/<none registered yet>"]


@pytest.mark.parametrize("env_id", MULTITASK_IDS)
def test_runs_on_our_multitask_envs(env_id):
    if env_id not in gym.registry:
        pytest.skip("no msol/* environment is registered yet")
    trainer = TrustPCLTrainer(make_env(env_id), TrustPCLConfig(batch_size=8), seed=0)
    for _ in range(20):
        metrics, _ = trainer.iteration()
    assert np.isfinite(metrics["huber_loss"]) and trainer.env_steps == 200


def test_runs_on_directional_swimmer_class():
    from msol.envs.swimmer import DirectionalSwimmerEnv

    env = gym.wrappers.TimeLimit(DirectionalSwimmerEnv(), max_episode_steps=50)
    trainer = TrustPCLTrainer(env, TrustPCLConfig(batch_size=8), seed=0)
    finished = []
    for _ in range(12):
        metrics, done = trainer.iteration()
        finished += done
    assert len(finished) == 2 and all(length == 50 for _, length in finished)
    assert np.isfinite(metrics["huber_loss"]) and metrics["lambda"] >= 0
