"""``python -m msol.train env=ess_* algo=sb3_*|ess_*``: run directory, rows, summary, resume (tiny budgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

import msol.common.algorithms
from msol.train import train

SMALL = ["env.kwargs.K=5", "env.kwargs.potential=0.95", "env.hparams.log_interval_frames_per_task=200",
         "env.hparams.eval_interval_frames_per_task=400", "algo.eval_games=100", "algo.obs_stats_steps=200",
         "logger.progress_bar=false"]


def run_train(monkeypatch: pytest.MonkeyPatch, run_dir: Path, overrides: list[str]) -> dict:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(msol.common.algorithms, "_plugin_modules", lambda: ("msol.baselines.ess",))
    monkeypatch.setattr(msol.common.algorithms, "_loaded", False)
    with initialize_config_module("msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return train(cfg, run_dir=run_dir)


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("algo", ["sb3_ppo", "sb3_a2c", "sb3_dqn"])
def test_defender_run_writes_rows_summary_and_resumes(monkeypatch, tmp_path, algo):
    run_dir = tmp_path / "run"
    extra = ["algo.kwargs.learning_starts=100"] if algo == "sb3_dqn" else []
    summary = run_train(monkeypatch, run_dir, ["env=ess_defender", f"algo={algo}", "algo.total_frames=800",
                                               *SMALL, *extra])
    rows = read_rows(run_dir)
    train_steps = [r["step"] for r in rows if r["phase"] == "train"]
    assert train_steps == [200, 400, 600, 800]
    assert [r["phase"] for r in rows].count("eval") == 2 and rows[-1]["phase"] == "final"
    assert summary["frames"] >= 800 and 0.0 <= summary["objective"] <= 1.0
    assert {"optimal_move_fraction", "fatal_mistakes_per_game", "vs_disjoint_support/win_rate"} <= set(summary)
    assert (run_dir / "checkpoints" / "latest.pt").exists()

    before = read_rows(run_dir)
    resumed = run_train(monkeypatch, run_dir, ["env=ess_defender", f"algo={algo}", "algo.total_frames=1200",
                                               *SMALL, *extra, f"resume={run_dir}"])
    after = read_rows(run_dir)
    assert after[: len(before) - 1] == before[:-1]  # the old final row was written after the checkpoint
    assert resumed["frames"] >= 1200
    assert min(r["step"] for r in after[len(before) - 1:] if r["phase"] == "train") > 800


def test_attacker_run(monkeypatch, tmp_path):
    summary = run_train(monkeypatch, tmp_path / "run", ["env=ess_attacker", "algo=sb3_ppo", "algo.total_frames=400",
                                                        "algo.net=linear", *SMALL[:1], *SMALL[2:]])
    assert {"win_rate", "balanced_split_fraction", "vs_random/win_rate"} <= set(summary)


def test_supervised_run_compares_rl_and_supervised(monkeypatch, tmp_path):
    summary = run_train(monkeypatch, tmp_path / "run", ["env=ess_defender", "algo=ess_supervised",
                                                        "algo.total_frames=800", "algo.supervised.epochs=2", *SMALL])
    assert summary["supervised_fit/dataset_size"] >= 800
    for side in ("rl", "supervised"):
        assert 0.0 <= summary[f"{side}/optimal_move_fraction"] <= 1.0
        assert f"{side}/fatal_mistakes_per_game" in summary


def test_multiagent_run_alternates_and_resumes(monkeypatch, tmp_path):
    run_dir = tmp_path / "run"
    common = ["env=ess_defender", "algo=ess_multiagent", "algo.rounds=2", *SMALL]
    summary = run_train(monkeypatch, run_dir, [*common, "algo.total_frames=400"])
    rows = read_rows(run_dir)
    assert [r["phase_index"] for r in rows if r["phase"] == "phase_end"] == [0, 1, 2, 3]
    assert {r["phase"] for r in rows} >= {"defender", "attacker", "phase_end", "final"}
    assert {"defender_vs_disjoint_support/win_rate", "attacker_vs_optimal/win_rate",
            "learned_vs_learned/win_rate"} <= set(summary)
    resumed = run_train(monkeypatch, run_dir, [*common, "algo.total_frames=400", f"resume={run_dir}"])
    assert resumed["frames"] == summary["frames"]  # every phase was done: nothing left to train


def test_wrong_env_for_the_algorithm_is_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(TypeError, match="needs a defender environment"):
        run_train(monkeypatch, tmp_path / "run", ["env=ess_attacker", "algo=ess_supervised",
                                                  "algo.total_frames=100", *SMALL[:1], *SMALL[2:]])


def test_sb3_trainers_run_any_gymnasium_env(monkeypatch, tmp_path):
    summary = run_train(monkeypatch, tmp_path / "run", ["env=gym", "env.id=CartPole-v1", "algo=sb3_a2c",
                                                        "algo.total_frames=400", "algo.obs_stats_steps=100",
                                                        "logger.progress_bar=false"])
    assert summary["frames"] >= 400 and summary["objective"] == summary["mean_reward"] > 0
