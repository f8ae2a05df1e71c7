"""Another package's algorithm, declared under the ``msol.algorithms`` entry-point group with its own
``algo/<name>.yaml`` on Hydra's search path, trains through ``python -m msol.train`` like ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from msol.common import algorithms

PLUGIN = '''
from msol.common.algorithms import register_algorithm


@register_algorithm("constant_guess", description="logs one row and reports a fixed return")
def train_constant(cfg, run):
    run.log(0, {"return/mean": float(cfg.algo.guess)}, phase="transfer/eval")
    return {"objective": float(cfg.algo.guess)}
'''


def _plugin_package(root: Path, module_body: str = PLUGIN) -> Path:
    """``their_algos`` with an installed-package record declaring its module under the entry-point group."""
    (root / "their_algos").mkdir(parents=True)
    (root / "their_algos" / "__init__.py").write_text(module_body)
    info = root / "their_algos-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: their-algos\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{algorithms.ENTRY_POINT_GROUP}]\nconstant_guess = their_algos\n")
    conf = root / "their_conf" / "algo"
    conf.mkdir(parents=True)
    (conf / "constant_guess.yaml").write_text("name: constant_guess\nguess: 2.5\n")
    return root


def test_an_entry_point_plugin_registers_and_trains_through_the_entry(tmp_path):
    root = _plugin_package(tmp_path / "site")
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               WANDB_MODE="disabled")
    run_dir = tmp_path / "run"

    def train(algo: str, *overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "msol.train", "env=moving_bandits", f"algo={algo}", *overrides,
                               f"hydra.searchpath=[file://{root / 'their_conf'}]", f"run_dir={run_dir}",
                               "logger.progress_bar=false"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)

    typo = train("constant_gues")
    assert typo.returncode == 2 and not run_dir.exists()
    assert typo.stderr.strip().splitlines() == [typo.stderr.strip()]  # one line, naming theirs among the valid
    assert "unknown algo 'constant_gues'; valid: a2c, constant_guess, " in typo.stderr
    on_gpu = train("constant_guess", "device=cuda")  # registered without devices=: it trains on the CPU only
    assert on_gpu.returncode == 2 and not run_dir.exists()
    assert on_gpu.stderr.strip() == ("msol.train: error: device=cuda: algo=constant_guess trains on the CPU only; "
                                     "valid: cpu")
    result = train("constant_guess")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["objective"] == 2.5


def test_a_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    root = _plugin_package(tmp_path / "site", "import a_module_that_is_not_there\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(algorithms, "_plugin_modules", list)
    monkeypatch.setattr(algorithms, "_loaded", False)
    with pytest.raises(ImportError, match=r"plugin constant_guess = 'their_algos' \(package their-algos\)"):
        algorithms.available_algorithms()


def test_every_module_and_package_under_baselines_is_found_without_a_list():
    folder = Path(algorithms.__file__).resolve().parents[2] / "baselines"
    on_disk = {p.stem for p in folder.iterdir()
               if not p.name.startswith("_") and (p.suffix == ".py" or (p / "__init__.py").is_file())}
    assert algorithms._plugin_modules() == [algorithms.SOFT_OPTIONS,
                                            *sorted(f"msol.baselines.{name}" for name in on_disk)]
    assert {"msol", "mlsh", "option_critic", "trpo", "trust_pcl", "sb3_ppo"} <= set(algorithms.available_algorithms())
