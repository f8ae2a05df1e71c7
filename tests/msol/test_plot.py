"""msol.plot on hand-written run directories: what it reads, how it aggregates, what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from omegaconf import OmegaConf

from msol import plot
from msol.plot import (
    align,
    bootstrap_mean_ci,
    find_run_dirs,
    first_crossing,
    load_curve,
    make_figure,
    plot_sweep,
    threshold_for,
)

FRAMES = [100, 200, 300, 400]


def write_run(root: Path, algo: str, seed: int, transfer: list[float], *, env: str = "taxi", optimal=1.0,
              frames=FRAMES, phase: str = "transfer/eval", finished: bool = True, budget_scale: float = 0.01,
              options: list[float] | None = None) -> Path:
    """A run directory as msol.common.run writes it: config.yaml, metrics.jsonl (train rows too), summary.json."""
    run_dir = root / env / algo / f"s{seed}"
    run_dir.mkdir(parents=True)
    cfg = {"env": {"name": env, "optimal_return": optimal}, "algo": {"name": algo}, "seed": seed,
           "budget_scale": budget_scale, "budget": {"name": "quick"},
           "experiment": {"name": "taxi", "paper": "MSOL Fig. 2b", "claim": "MSOL good"}}
    OmegaConf.save(OmegaConf.create(cfg), run_dir / "config.yaml")
    rows = []
    offset = 0
    if options is not None:
        rows += [{"step": f, "phase": "options/eval", "frames_per_task": f, "return/mean": v}
                 for f, v in zip(frames, options)]
        offset = frames[-1]
    for f, v in zip(frames, transfer):
        rows.append({"step": offset + f, "phase": phase.split("/")[0], "frames_per_task": f, "return/mean": -9.0})
        rows.append({"step": offset + f, "phase": phase, "frames_per_task": f, "return/mean": v, "return/R-G": 0.0})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if finished:
        (run_dir / "summary.json").write_text("{}")
    return run_dir


def test_bootstrap_band_is_zero_for_identical_seeds_and_brackets_the_mean_otherwise():
    same = np.tile([1.0, 2.0, 3.0], (4, 1))
    lo, hi = bootstrap_mean_ci(same)
    np.testing.assert_allclose(lo, same[0])
    np.testing.assert_allclose(hi, same[0])
    rng = np.random.default_rng(1)
    spread = rng.normal(0.0, 1.0, size=(8, 5))
    lo, hi = bootstrap_mean_ci(spread)
    assert np.all(lo < spread.mean(0)) and np.all(spread.mean(0) < hi)
    lo99, hi99 = bootstrap_mean_ci(spread, confidence=0.99)
    assert np.all(hi99 - lo99 > hi - lo)
    one_lo, one_hi = bootstrap_mean_ci(spread[:1])
    np.testing.assert_allclose(one_lo, one_hi)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_ci(spread, confidence=95)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_mean_ci(spread, resamples=0)


def test_first_crossing_and_threshold():
    frames = np.array([10.0, 20.0, 30.0])
    assert first_crossing(frames, np.array([0.1, 0.9, 0.5]), 0.9) == 20.0
    assert first_crossing(frames, np.array([0.1, 0.2, 0.5]), 0.9) is None
    assert threshold_for(0.59) == pytest.approx(0.531)
    assert threshold_for(-0.5) == pytest.approx(-0.55)  # below a negative optimum, not above it


def test_align_interpolates_seeds_onto_their_common_range(tmp_path):
    a = load_curve(write_run(tmp_path, "msol", 0, [0.0, 1.0, 2.0, 3.0]))
    b = load_curve(write_run(tmp_path, "msol", 1, [0.0, 2.0, 4.0], frames=[150, 250, 350]))
    grid, values = align([a, b])
    np.testing.assert_array_equal(grid, [150, 200, 250, 300, 350])
    np.testing.assert_allclose(values[0], [0.5, 1.0, 1.5, 2.0, 2.5])
    np.testing.assert_allclose(values[1], [0.0, 1.0, 2.0, 3.0, 4.0])


def test_load_curve_takes_the_transfer_phase_over_option_learning_and_scratch_for_flat_learners(tmp_path):
    msol_run = write_run(tmp_path, "msol", 0, [0.1, 0.2, 0.3, 0.4], options=[5.0, 6.0, 7.0, 8.0])
    flat_run = write_run(tmp_path, "a2c", 0, [0.5, 0.6, 0.7, 0.8], phase="scratch/eval")
    curve = load_curve(msol_run)
    assert curve.phase == "transfer/eval"
    np.testing.assert_array_equal(curve.frames, FRAMES)  # frames per task of the phase, not the global step
    np.testing.assert_allclose(curve.values, [0.1, 0.2, 0.3, 0.4])
    assert load_curve(flat_run).phase == "scratch/eval"
    assert load_curve(msol_run, phase="options/eval").values[-1] == 8.0
    assert sorted(find_run_dirs(tmp_path)) == sorted([msol_run, flat_run])


def test_plot_sweep_writes_table_json_and_figure_from_the_runs(tmp_path):
    msol = {0: [0.2, 0.9, 0.95, 1.0], 1: [0.4, 0.8, 0.95, 0.9], 2: [0.0, 0.85, 1.0, 0.95]}
    flat = {0: [0.0, 0.1, 0.2, 0.3], 1: [0.0, 0.2, 0.3, 0.5]}
    for seed, values in msol.items():
        write_run(tmp_path, "msol", seed, values, options=[9.0] * 4)
    for seed, values in flat.items():
        write_run(tmp_path, "a2c", seed, values, phase="scratch/eval")

    report = plot_sweep(tmp_path, resamples=500)

    data = json.loads(report.json.read_text())["taxi"]
    assert data["optimal_return"] == 1.0 and data["threshold"] == pytest.approx(0.9)
    m, f = data["algos"]["msol"], data["algos"]["a2c"]
    assert m["seeds"] == [0, 1, 2] and f["seeds"] == [0, 1]
    assert m["final"] == [1.0, 0.9, 0.95]
    assert m["final_mean"] == pytest.approx(0.95)
    assert m["final_ci"][0] <= 0.95 <= m["final_ci"][1]
    # Mean curve [0.2, 0.85, 0.967, 0.95] first reaches 0.9 at 300 frames; every seed reaches it on its own.
    assert m["frames_to_threshold"] == 300.0
    assert m["seeds_reaching"] == 3
    assert f["frames_to_threshold"] is None and f["seeds_reaching"] == 0
    assert f["final_mean"] == pytest.approx(0.4)

    table = report.table.read_text()
    assert "| MSOL (`msol`) | 3 (0,1,2) | 0.950 [" in table
    assert "| A2C (scratch) (`a2c`) | 2 (0,1) | 0.400 [" in table
    assert "| 300 | 3/3 |" in table and "| not reached | 0/2 |" in table
    assert "MSOL Fig. 2b" in table and "budget_scale 0.01" in table
    assert table.index("MSOL (`msol`)") < table.index("A2C (scratch)")  # paper order, not alphabetical
    image = imread(report.figure)
    assert image.ndim == 3 and image.shape[0] > 200 and image.std() > 0.01


def test_figure_draws_one_line_per_algorithm_and_the_optimum_dashed(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, "msol", seed, [0.1, 0.2, 0.3, 0.4])
        write_run(tmp_path, "distral", seed, [0.0, 0.1, 0.2, 0.3])
    results = plot.aggregate([load_curve(d) for d in find_run_dirs(tmp_path)], resamples=200)
    ax = make_figure(results).axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert labels == ["MSOL (n=2)", "DISTRAL (n=2)", "optimal"]
    dashed = ax.lines[-1]
    assert dashed.get_linestyle() == "--" and set(dashed.get_ydata()) == {1.0}
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.1, 0.2, 0.3, 0.4])
    assert len(ax.collections) == 2  # one bootstrap band per algorithm


def test_no_optimal_return_means_no_dashed_line_and_no_threshold_columns(tmp_path):
    write_run(tmp_path, "msol", 0, [1.0, 2.0, 3.0, 4.0], env="directional_swimmer", optimal=None)
    report = plot_sweep(tmp_path, resamples=100)
    assert "| n/a | n/a |" in report.markdown and "Optimal return" not in report.markdown
    ax = make_figure(report.results).axes[0]
    assert [line.get_label() for line in ax.lines] == ["MSOL (n=1)"]


def test_unfinished_runs_are_left_out_unless_asked_for(tmp_path):
    write_run(tmp_path, "msol", 0, [0.1, 0.2, 0.3, 0.4])
    write_run(tmp_path, "msol", 1, [0.5, 0.6], frames=[100, 200], finished=False)
    report = plot_sweep(tmp_path, resamples=100)
    assert report.results["taxi"].algos["msol"].seeds == [0]
    assert "unfinished" in report.markdown
    report = plot_sweep(tmp_path, include_unfinished=True, resamples=100)
    algo = report.results["taxi"].algos["msol"]
    assert algo.seeds == [0, 1]
    np.testing.assert_array_equal(algo.frames, [100, 200])  # common range of the two seeds


def test_refuses_to_average_two_sweeps(tmp_path):
    write_run(tmp_path / "a", "msol", 0, [0.1, 0.2, 0.3, 0.4])
    write_run(tmp_path / "b", "msol", 0, [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="two runs of env=taxi algo=msol seed=0"):
        plot_sweep(tmp_path)
    write_run(tmp_path / "c", "msol", 0, [0.1, 0.2, 0.3, 0.4], budget_scale=0.01)
    write_run(tmp_path / "c", "msol", 1, [0.1, 0.2, 0.3, 0.4], budget_scale=1.0)
    with pytest.raises(ValueError, match="budget_scale"):
        plot_sweep(tmp_path / "c")


def test_cli_prints_the_table_and_reports_bad_input(tmp_path, capsys):
    write_run(tmp_path, "msol", 0, [0.1, 0.2, 0.3, 0.4])
    plot.main([str(tmp_path), "--resamples", "100", "--out", str(tmp_path / "figs")])
    out = capsys.readouterr().out
    assert "| MSOL (`msol`) | 1 (0) | 0.400 [0.400, 0.400] |" in out
    assert (tmp_path / "figs" / "returns.png").is_file() and (tmp_path / "figs" / "results.md").is_file()
    for bad, message in ((tmp_path / "missing", "does not exist"), (tmp_path / "figs", "no run directories")):
        with pytest.raises(SystemExit) as exit_info:
            plot.main([str(bad)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
