"""benchmarks/seeded_rows.py: rows without their timing columns, and the comparison of two folders of them."""

from __future__ import annotations

import json

from benchmarks.seeded_rows import RUNS, compare, time_free_rows


def test_rows_keep_everything_but_timing(tmp_path):
    member = tmp_path / "run" / "s1"
    member.mkdir(parents=True)
    rows = [{"step": 10, "return/mean": 1.5, "fps": 900.0, "wall_time_s": 3.2, "phase": "options"}]
    (member / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert time_free_rows(tmp_path / "run") == {"s1/metrics.jsonl": [{"step": 10, "return/mean": 1.5,
                                                                      "phase": "options"}]}


def test_compare_names_runs_that_differ_or_are_missing(tmp_path, capsys):
    before, after = tmp_path / "before", tmp_path / "after"
    for folder, value in ((before, 1.0), (after, 1.0)):
        folder.mkdir()
        (folder / "same.json").write_text(json.dumps({"m": [{"x": value}]}))
    (before / "changed.json").write_text(json.dumps({"m": [{"x": 1.0}]}))
    (after / "changed.json").write_text(json.dumps({"m": [{"x": 1.0000001}]}))
    (before / "gone.json").write_text("{}")
    assert compare(before, after) == ["changed", "gone"]
    assert "same same" in capsys.readouterr().out


def test_every_learner_is_in_the_check():
    algos = {arg.split("=", 1)[1] for overrides in RUNS.values() for arg in overrides if arg.startswith("algo=")}
    assert {"msol", "msol_frozen", "distral_action", "ppo", "mlsh", "option_critic", "hard_options", "trust_pcl",
            "trpo"} <= algos
