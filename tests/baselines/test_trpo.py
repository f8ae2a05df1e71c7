"""``algo=trpo`` (sb3-contrib) through msol.train: the same rows as trust_pcl, learner metrics, resume."""

from __future__ import annotations

import math

import pytest
from test_trust_pcl_cli import read_rows, resume_and_check, run_train

TINY = ["algo=trpo", "algo.n_steps=128", "algo.batch_size=64", "algo.n_critic_updates=2", "eval.episodes_per_slot=1",
        "env.hparams.log_interval_frames_per_task=128", "env.hparams.eval_interval_frames_per_task=256"]


def test_pendulum_rows_learner_metrics_and_resume(monkeypatch, tmp_path):
    run_dir = tmp_path / "run"
    summary = run_train(monkeypatch, run_dir, ["env=gym", "env.id=Pendulum-v1", "algo.total_frames=384", *TINY])
    rows = read_rows(run_dir)
    train_rows = [r for r in rows if r["phase"] == "train"]
    assert [r["step"] for r in train_rows] == [128, 256, 384]
    assert [r["step"] for r in rows if r["phase"] == "eval"] == [256, 384]
    assert "kl_divergence_loss" not in train_rows[0]               # no update has happened yet at step 128
    assert math.isfinite(train_rows[-1]["kl_divergence_loss"]) and "std" in train_rows[-1]
    assert train_rows[-1]["episodes"] == 1                         # Pendulum: 200-step episodes
    assert summary["frames"] == 384 and -2000 < summary["objective"] < 0

    resume_and_check(monkeypatch, run_dir, ["env=gym", "env.id=Pendulum-v1", "algo.total_frames=640", *TINY],
                     new_train_steps=[512, 640])


def test_discrete_acrobot_runs(monkeypatch, tmp_path):
    summary = run_train(monkeypatch, tmp_path / "run", ["env=acrobot", "algo.total_frames=256", *TINY])
    assert summary["frames"] == 256 and -500 <= summary["objective"] <= 0


def test_bad_activation_names_valid_ones(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="algo.activation='sigmoid'.*tanh, relu"):
        run_train(monkeypatch, tmp_path / "run", ["env=acrobot", "algo.activation=sigmoid", *TINY])
