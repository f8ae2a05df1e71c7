"""The installed package has one top-level name, ``msol``: a project with its own ``envs``, ``configs`` and
``baselines`` packages keeps them, and still trains with ours (through the ``msol-train`` console script, from
the wheel's package data alone) and finds our gymnasium ids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=False, capture_output=True, text=True, **kwargs)


def test_a_wheel_installs_only_msol_and_trains_next_to_a_projects_own_envs_configs_and_baselines(tmp_path):
    source = tmp_path / "source"  # a clean copy: setuptools would reuse a stale build/ of the working tree
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "runs", "multirun", "docs",
                                  "tests", "benchmarks")
    shutil.copytree(REPO, source, ignore=skip)
    pip = [sys.executable, "-m", "pip", "-q"]
    dist = tmp_path / "dist"
    built = _run([*pip, "wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(dist)],
                 timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(dist.glob("msol-*.whl"))
    ours = {"msol", wheel.name.split("-py")[0] + ".dist-info"}
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == ours
    assert "msol/configs/train.yaml" in names and "msol/configs/algo/msol.yaml" in names
    site = tmp_path / "site"
    installed = _run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert {p.name for p in site.iterdir()} - {"bin"} == ours  # site-packages holds no other name of ours

    project = tmp_path / "project"  # a researcher's project with packages of the same names as our folders
    for name in ("envs", "configs", "baselines"):
        (project / name).mkdir(parents=True)
        (project / name / "__init__.py").write_text(f"OWNER = 'project {name}'\n")
    env = dict(os.environ, PYTHONPATH=str(site), WANDB_MODE="disabled")
    check = ("import msol, envs, configs, baselines, gymnasium\n"
             f"assert msol.__file__.startswith({str(site)!r}), msol.__file__\n"
             "assert (envs.OWNER, configs.OWNER, baselines.OWNER) == "
             "('project envs', 'project configs', 'project baselines')\n"
             "gymnasium.make('msol/Taxi-v0', task='R-G').reset(seed=0)\n")
    result = _run([sys.executable, "-c", check], cwd=project, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "run"
    trained = _run([str(site / "bin" / "msol-train"), "env=moving_bandits", "algo=a2c",
                    "budget_scale=0.002", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
                    "logger.progress_bar=false", f"run_dir={run}"], cwd=project, env=env, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (run / "summary.json").is_file()

    # A source checkout (a git worktree at another commit) run from its own folder uses its own envs,
    # baselines and configs, whatever checkout the package was installed from.
    probe = ("import msol.envs, msol.baselines, msol.configs as c; "
             "print(msol.envs.__file__, msol.baselines.__file__, c.__file__)")
    where = _run([sys.executable, "-c", probe], cwd=source, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    assert all(path.startswith(str(source)) for path in where.stdout.split()), where.stdout
