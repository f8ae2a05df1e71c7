"""``algo.also_transfer``: transfers that share another run's option learning (msol/common/twins.py)."""

from __future__ import annotations

import fcntl
import json

import pytest
from helpers import compose_cfg
from omegaconf import OmegaConf

from msol.common.config_check import ConfigError
from msol.common.twins import twin_algo, twin_configs


@pytest.mark.parametrize("lead, twin", [("msol_and_frozen", "msol_frozen"), ("msol_and_hard", "hard_options"),
                                        ("msol_and_hard", "hard_options_primitives")])
def test_a_twins_algo_config_is_the_one_its_own_run_composes(lead, twin):
    """Also through a chain of yamls (hard_options_primitives is defined on top of hard_options, itself on msol)."""
    made = OmegaConf.to_container(twin_algo(compose_cfg(f"algo={lead}"), twin), resolve=True)
    own = OmegaConf.to_container(compose_cfg(f"algo={twin}").algo, resolve=True)
    assert made == own


@pytest.mark.parametrize("twin, says", [("nope", "unknown algorithm 'nope'"), ("mlsh", "not defined on top of msol")])
def test_a_twin_that_cannot_share_msols_option_learning_is_refused(twin, says):
    with pytest.raises(ConfigError, match=says):
        twin_algo(compose_cfg("algo=msol_and_hard"), twin)


def test_msol_and_hard_learns_the_options_once_for_three_transfers(tmp_path):
    """taxi-moved's ``algo=msol_and_hard``: MSOL, then hard options and hard options + primitives transfer from its
    option learning (on the moved map), each into the directory a separate run would have."""
    from msol.train import train

    lead = tmp_path / "taxi_moved" / "msol" / "s0"
    train(compose_cfg("env=taxi_moved", "algo=msol_and_hard", "budget_scale=0.0005", "env.hparams.num_slots=2",
                      "env.hparams.envs_per_slot=2", "env.hparams.hidden=[16]", "env.hparams.encoder_output_size=16",
                      "env.hparams.option_embedding=4", "logger.progress_bar=false", f"run_dir={lead}"))
    runs = {name: tmp_path / "taxi_moved" / name / "s0" for name in ("msol", "hard_options", "hard_options_primitives")}
    rows = {}
    for name, run in runs.items():
        assert (run / "summary.json").exists(), name
        rows[name] = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert any(r["phase"] == "transfer/eval" for r in rows[name]), name
    options = {name: [r.get("return/mean") for r in run if r["phase"].startswith("options")]
               for name, run in rows.items()}
    assert options["msol"] and options["hard_options"] == options["msol"] == options["hard_options_primitives"]
    config = (runs["hard_options_primitives"] / "config.yaml").read_text()
    assert "name: hard_options_primitives" in config and "primitive_options: true" in config
    assert f"init_from: {runs['msol']}" in config


def test_a_twin_another_process_trains_is_left_to_it(tmp_path, capsys):
    """A twin started by hand on another core (``init_from=`` the lead run) holds its run directory's lock: the lead
    run must not start the same transfer a second time (it would be refused as "in use" and fail the sweep job)."""
    cfg = compose_cfg("algo=msol_and_hard")
    lead = tmp_path / "taxi" / "msol" / "s0"
    busy = tmp_path / "taxi" / "hard_options" / "s0"
    busy.mkdir(parents=True)
    with open(busy / "run.lock", "a+") as handle:  # held as a training process holds it (flock: per open file)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        left = [str(t.algo.name) for t in twin_configs(cfg, lead)]
    assert left == ["hard_options_primitives"]
    assert f"twin hard_options in {busy} is being trained by another process; skipped" in capsys.readouterr().out
    assert [str(t.algo.name) for t in twin_configs(cfg, lead)] == ["hard_options", "hard_options_primitives"]
