"""The experiment campaign runner: sweep expansion, run directories and the report's tables and figures."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from omegaconf import OmegaConf

from msol.baselines.ess import experiments


def test_jobs_expand_the_sweep_of_every_experiment():
    grid = list(experiments.jobs("ess_defender_grid", [0, 1], ["algo.eval_games=10"]))
    assert len(grid) == 2 * 3 * 4 * 4
    assert grid[0] == ["experiment=ess_defender_grid", "algo=sb3_ppo", "env.kwargs.K=5", "env.kwargs.potential=0.8",
                       "seed=0", "algo.eval_games=10"]
    for name in experiments.EXPERIMENTS:
        cfg = experiments._compose(next(experiments.jobs(name, [0], [])))
        assert cfg.experiment.name == name and cfg.algo.total_frames == 20000
    with pytest.raises(ValueError, match="valid: ess_defender_grid"):
        list(experiments.jobs("ess_everything", [0], []))


def _fake_run(root, experiment, algo, K, potential, summary):
    run_dir = root / experiment / algo / f"K{K}_phi{potential}_s0"
    run_dir.mkdir(parents=True)
    OmegaConf.save({"algo": {"name": algo, "total_frames": 100}, "budget_scale": 1.0, "seed": 0,
                    "env": {"kwargs": {"K": K, "potential": potential, "attacker": "mixture"}}},
                   run_dir / "config.yaml")
    (run_dir / "summary.json").write_text(json.dumps(summary | {"wall_time_s": 60.0}))


def test_report_tables_and_figures(tmp_path, capsys):
    out, docs = tmp_path / "runs", tmp_path / "docs"
    for algo in ("sb3_ppo", "sb3_dqn"):
        for K in (5, 10):
            for p in (0.8, 0.99):
                _fake_run(out, "ess_defender_grid", algo, K, p,
                          {"win_rate": 0.5 + K / 100 + p / 10, "optimal_move_fraction": 0.7, "objective": 0.5})
    experiments.report(out, docs)
    text = capsys.readouterr().out
    assert "ess_defender_grid: 8 jobs, frame budget [100], seeds [0], training wall time 8.0 min" in text
    assert "| sb3_dqn | 10 | 0.68 (0.70) | 0.70 (0.70) |" in text
    assert "ess_attacker: no finished jobs" in text
    assert (docs / "defender_grid.png").stat().st_size > 1000


def test_supervised_and_multiagent_reports(tmp_path):
    rows = []
    for K in (5, 10):
        rows.append({"algo": "ess_supervised", "K": K, "potential": 0.9, "seed": 0,
                     **{f"{s}/{k}": 0.5 for s in ("rl", "supervised")
                        for k in ("optimal_move_fraction", "win_rate", "fatal_mistakes_per_game")},
                     "rl/accuracy_by_distance": [1.0] * K, "supervised/accuracy_by_distance": [0.9] * K,
                     "supervised_fit/validation_accuracy": 0.95})
    table = experiments.report_supervised(rows, tmp_path, plt)
    assert table.splitlines()[-1] == "| 10 | 0.50 | 0.50 | 0.50 | 0.50 | 0.50 | 0.50 | 0.95 |"
    multi = [{"algo": "ess_multiagent", "K": 5, "potential": 0.9, "seed": 0,
              "defender_vs_disjoint_support/win_rate": 0.9, "defender_vs_optimal/win_rate": 0.8},
             {"algo": "sb3_ppo", "K": 5, "potential": 0.9, "seed": 0, "win_rate": 0.95,
              "vs_disjoint_support/win_rate": 0.6}]
    table = experiments.report_multiagent(multi, tmp_path, plt)
    assert "| single-agent (trained vs optimal) on disjoint support | 0.60 |" in table
    assert "| multi-agent on disjoint support | 0.90 |" in table
    assert (tmp_path / "rl_vs_supervised.png").exists() and (tmp_path / "multiagent.png").exists()
