"""The reproduction suite: experiment configs, budgets, launchers, and a real sweep through Hydra then msol.plot."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import compose_cfg
from matplotlib.image import imread
from omegaconf import OmegaConf

from msol import plot
from msol.common.algorithms import available_algorithms
from msol.common.config_check import validate_config
from msol.sweep_status import planned_runs, status_table, sweep_status

REPO = Path(__file__).resolve().parents[2]

# docs/spec/experiments.md, the MSOL rows: experiment -> (algorithms, envs)
SPEC_ROWS = {
    "mb": ({"msol", "msol_frozen", "distral", "distral_action", "mlsh"}, {"moving_bandits"}),
    "taxi": ({"msol", "msol_frozen", "distral", "distral_action", "mlsh"}, {"taxi"}),
    "dtaxi": ({"msol", "msol_frozen", "distral", "distral_action", "mlsh"}, {"directional_taxi"}),
    "taxi-unseen": ({"msol", "a2c", "option_critic"}, {"taxi_unseen"}),
    "taxi-moved": ({"msol", "hard_options", "hard_options_primitives", "a2c"}, {"taxi10x10_moved", "taxi_moved"}),
    "swimmer": ({"msol", "distral"}, {"directional_swimmer"}),
}
# What a sweep's algo choice runs: algo=msol_and_frozen is MSOL plus MSOL(frozen)'s transfer from its options,
# algo=msol_and_hard MSOL plus both hard-option baselines' transfers.
RUNS_OF_CHOICE = {"msol_and_frozen": {"msol", "msol_frozen"},
                  "msol_and_hard": {"msol", "hard_options", "hard_options_primitives"}}


def _compose(overrides: list[str], hydra: bool = False):
    return compose_cfg(*overrides, hydra=hydra)


def _sweep_axes(experiment: str, budget: str) -> dict[str, list[str]]:
    params = _compose([f"experiment={experiment}", f"budget={budget}"], hydra=True).hydra.sweeper.params
    return {key: [v.strip() for v in str(values).split(",")] for key, values in params.items()}


@pytest.mark.parametrize("experiment", sorted(SPEC_ROWS))
def test_experiment_sweeps_the_spec_row_and_every_job_config_is_valid(experiment):
    algos, envs = SPEC_ROWS[experiment]
    paper, quick = _sweep_axes(experiment, "paper"), _sweep_axes(experiment, "quick")
    assert set().union(*(RUNS_OF_CHOICE.get(a, {a}) for a in paper["algo"])) == algos
    assert set(paper["algo"]) == set(quick["algo"]) and "seed" not in paper  # seeds: one population per algo
    assert set(paper.get("env", [str(_compose([f"experiment={experiment}"]).env.name)])) == envs
    assert _compose([f"experiment={experiment}"]).population == 5
    registered = available_algorithms()
    for env in envs:
        for algo in paper["algo"]:
            cfg = _compose([f"experiment={experiment}", f"env={env}", f"algo={algo}", "budget=quick"])
            assert cfg.experiment.name == experiment  # the W&B group (msol/common/run.py)
            assert cfg.budget.name == "quick" and 0 < cfg.budget_scale == cfg.experiment.quick_budget_scale < 1
            assert cfg.population == 3
            assert (cfg.env.optimal_return is None) == (experiment == "swimmer")
            assert {str(cfg.algo.name), *cfg.algo.get("also_transfer", [])} == RUNS_OF_CHOICE.get(algo, {algo})
            if cfg.algo.name in registered:
                validate_config(cfg)
    paper_cfg = _compose([f"experiment={experiment}"])
    assert paper_cfg.budget.name == "paper" and paper_cfg.budget_scale == 1.0


def test_quick_budget_scales_the_phases_the_trainer_runs():
    from msol.common.protocol import build_phases

    tasks = [f"{a}-{b}" for a in "RGYB" for b in "RGYB" if a != b]
    paper = build_phases(_compose(["experiment=taxi"]), tasks)
    quick = build_phases(_compose(["experiment=taxi", "budget=quick"]), tasks)
    assert [p.frames_per_task for p in paper] == [1_400_000, 300_000]
    assert [p.frames_per_task for p in quick] == [14_000, 3_000]
    unseen = build_phases(_compose(["experiment=taxi-unseen"]), tasks)
    assert sorted(unseen[1].tasks) == ["B-R", "G-Y", "R-G", "Y-B"]
    assert not set(unseen[0].tasks) & set(unseen[1].tasks) and len(unseen[0].tasks) == 8


def test_launcher_configs():
    local = _compose(["experiment=taxi", "hydra/launcher=local", "hydra.launcher.n_jobs=3"], hydra=True)
    assert local.hydra.launcher._target_.endswith("JoblibLauncher") and local.hydra.launcher.n_jobs == 3
    slurm = _compose(["experiment=taxi", "hydra/launcher=slurm", "hydra.launcher.partition=cpu"], hydra=True)
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.launcher.partition == "cpu" and slurm.hydra.launcher.cpus_per_task == 1


# ------------------------------------------------------------------------------------------ real sweeps
# One process per seed (population=1): these tests sweep the seed axis through Hydra's launchers.
TINY = ["experiment=mb", "budget=quick", "budget_scale=0.005", "env.hparams.num_slots=2",
        "env.hparams.envs_per_slot=2", "eval.episodes_per_slot=2", "logger.progress_bar=false", "population=1"]


def _multirun(sweep_dir: Path, *overrides: str, timeout: float = 240, expect: int = 0
              ) -> subprocess.CompletedProcess:
    env = dict(os.environ, WANDB_MODE="disabled", MUJOCO_GL="egl", HYDRA_FULL_ERROR="1")
    cmd = [sys.executable, "-m", "msol.train", "-m", *TINY, *overrides, f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.run(cmd, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == expect, proc.stderr[-3000:]
    return proc


def _last_row(run_dir: Path, phase: str) -> dict:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r["phase"] == phase][-1]


def test_quick_sweep_end_to_end_then_plot(tmp_path):
    """Two algorithms x two seeds through Hydra's multirun (basic launcher), then msol.plot on the sweep dir."""
    sweep = tmp_path / "sweep"
    _multirun(sweep, "algo=msol,a2c", "seed=0,1")

    runs = {(a, s): sweep / "moving_bandits" / a / f"s{s}" for a in ("msol", "a2c") for s in (0, 1)}
    for run_dir in runs.values():
        assert (run_dir / "summary.json").is_file()
        cfg = OmegaConf.load(run_dir / "config.yaml")
        assert cfg.experiment.name == "mb" and cfg.budget.name == "quick" and cfg.budget_scale == 0.005

    plot.main([str(sweep), "--resamples", "200"])

    results = json.loads((sweep / "results.json").read_text())["moving_bandits"]
    assert results["optimal_return"] == 43.8 and results["budget"] == "quick"
    table = (sweep / "results.md").read_text()
    assert "Command: `python -m msol.train -m" in table and "algo=msol,a2c seed=0,1" in table  # provenance
    for algo, phase in (("msol", "transfer/eval"), ("a2c", "scratch/eval")):
        last = [_last_row(runs[algo, s], phase) for s in (0, 1)]
        got = results["algos"][algo]
        assert got["seeds"] == [0, 1]
        assert got["final"] == [r["return/mean"] for r in last]  # the table is the runs' own last eval rows
        assert got["frames"][-1] == last[0]["frames_per_task"] == 500  # 100k transfer frames x 0.005
        mean = (last[0]["return/mean"] + last[1]["return/mean"]) / 2
        assert f"(`{algo}`) | 2 (0,1) | {mean:.3f} [" in table
    image = imread(sweep / "returns.png")
    assert image.shape[0] > 200 and image.std() > 0.01

    # Archived for the repository (docs/results/<experiment>-<budget>): no checkpoints, gzipped metrics, and
    # msol.plot reads the archive as it reads the sweep.
    archive = tmp_path / "docs" / "mb-quick"
    plot.main([str(sweep), "--archive", str(archive), "--out", str(tmp_path / "plots"), "--resamples", "200"])
    kept = {p.relative_to(archive).as_posix() for p in archive.rglob("*") if p.is_file()}
    assert kept == {"multirun.yaml"} | {f"moving_bandits/{a}/s{s}/{name}" for a in ("msol", "a2c") for s in (0, 1)
                                        for name in ("config.yaml", "summary.json", "metrics.jsonl.gz")}
    plot.main([str(archive), "--resamples", "200"])
    again = json.loads((archive / "results.json").read_text())["moving_bandits"]
    assert {a: r["final"] for a, r in again["algos"].items()} == {a: r["final"] for a, r in results["algos"].items()}
    assert (archive / "results.md").read_text().split("###")[0].split("runs finished")[1] == \
        table.split("###")[0].split("runs finished")[1]  # finish dates and the sweep's command


def test_rerunning_a_sweep_skips_finished_runs_resumes_checkpointed_ones_and_starts_the_rest(tmp_path):
    """A sweep stopped at any moment continues with the same command: here seed 0 finished, seed 1 stopped with a
    checkpoint (its summary.json removed), seed 2 never started."""
    sweep = tmp_path / "sweep"
    _multirun(sweep, "algo=a2c", "seed=0,1")
    runs = [sweep / "moving_bandits" / "a2c" / f"s{seed}" for seed in (0, 1, 2)]
    finished = (runs[0] / "metrics.jsonl").read_bytes(), (runs[0] / "summary.json").read_bytes()
    (runs[1] / "summary.json").unlink()
    status = {row.run_dir.name: row for row in sweep_status(sweep)}
    assert (status["s0"].state, status["s1"].state, status["s1"].frames_done) == ("done", "resumable", 500)
    assert {r.run_dir.name for r in planned_runs(sweep)} == {"s0", "s1"}  # the jobs of the sweep's multirun.yaml
    assert "| moving_bandits/a2c/s1 | resumable at 500 | 500 / 500 |" in status_table(list(status.values()), sweep)
    # A directory holding several sweeps: each one's jobs without a directory are listed under it.
    (tmp_path / "maps" / "other").mkdir(parents=True)
    shutil.copy2(sweep / "multirun.yaml", tmp_path / "maps" / "other" / "multirun.yaml")
    assert {(str(r.run_dir.relative_to(tmp_path)), r.state) for r in sweep_status(tmp_path)} == {
        ("sweep/moving_bandits/a2c/s0", "done"), ("sweep/moving_bandits/a2c/s1", "resumable"),
        ("maps/other/moving_bandits/a2c/s0", "not started"), ("maps/other/moving_bandits/a2c/s1", "not started")}
    assert [d.name for d in plot.archive_runs(sweep, tmp_path / "finished")] == ["s0"]
    partial = plot.archive_runs(sweep, tmp_path / "partial", include_unfinished=True)
    assert [d.name for d in partial] == ["s0", "s1"] and not (partial[1] / "summary.json").exists()
    assert (partial[1] / "metrics.jsonl.gz").exists() and not (partial[1] / "checkpoints").exists()
    proc = _multirun(sweep, "algo=a2c", "seed=0,1,2")
    assert f"{runs[0]} is finished; skipped" in proc.stdout
    assert f"{runs[1]} continues from its checkpoint" in proc.stdout
    assert ((runs[0] / "metrics.jsonl").read_bytes(), (runs[0] / "summary.json").read_bytes()) == finished
    assert all((run / "summary.json").is_file() for run in runs)
    # A job that finds a run of another configuration in its directory is refused; that run is untouched.
    proc = _multirun(sweep, "algo=a2c", "seed=0", "algo.lr=0.5", expect=2)
    assert "holds a run of another configuration (algo.lr:" in proc.stderr and "hydra.sweep.dir" in proc.stderr
    assert ((runs[0] / "metrics.jsonl").read_bytes(), (runs[0] / "summary.json").read_bytes()) == finished


def test_status_estimates_a_twin_transfer_from_its_source_run(tmp_path):
    """An ``algo.also_transfer`` twin (MSOL(frozen)) starts from its source's option learning: before it starts, only
    its transfer frames are left, at the speed of the MSOL run it transfers from."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    OmegaConf.save({"hydra": {"sweep": {"dir": str(sweep), "subdir": "${env.name}/${algo.name}/s${seed}"},
                              "sweeper": {"params": {"algo": "msol_and_frozen"}},
                              "overrides": {"task": ["experiment=taxi", "budget=paper", "population=2"]}}},
                   sweep / "multirun.yaml")
    runs = {f"{r.algo}/{r.run_dir.name}": r for r in planned_runs(sweep)}
    assert sorted(runs) == ["msol/s0", "msol/s1", "msol_frozen/s0", "msol_frozen/s1"]
    options, transfer = 1_400_000, 300_000  # Taxi's frames per task (docs/spec/msol.md)
    assert (runs["msol/s0"].frames_done, runs["msol/s0"].frames_total) == (0, options + transfer)
    assert (runs["msol_frozen/s0"].frames_done, runs["msol_frozen/s0"].speed_of) == (options, "msol")
    # MSOL's population ran 700k frames per task in 1000 s: a twin's 300k transfer frames take 429 s (7 min).
    for seed in ("s0", "s1"):
        runs[f"msol/{seed}"].state, runs[f"msol/{seed}"].frames_done = "running", 700_000
        runs[f"msol/{seed}"].seconds = 1000.0
    table = status_table(list(runs.values()), sweep)
    assert "| taxi/msol_frozen/s1 | not started (transfers from msol's option learning) | 1,400,000 / 1,700,000 | ? | " \
           "7 min |" in table
    assert "Estimated CPU time left: 31 min," in table  # 1429 s (MSOL: 1M frames left) + 429 s, once per population


def test_submitit_local_launcher_runs_sweep_jobs(tmp_path):
    """The SLURM path (hydra-submitit-launcher) with submitit's local executor: each job a separate process."""
    sweep = tmp_path / "sweep"
    _multirun(sweep, "algo=a2c", "seed=0,1", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5")
    for seed in (0, 1):
        run_dir = sweep / "moving_bandits" / "a2c" / f"s{seed}"
        assert (run_dir / "summary.json").is_file()
        assert _last_row(run_dir, "scratch/eval")["frames_per_task"] == 500
    job_logs = list((sweep / ".submitit").glob("*/*_result.pkl"))
    assert len(job_logs) == 2  # submitit ran (and pickled the result of) two separate jobs


def test_a_preempted_submitit_job_checkpoints_is_requeued_and_continues_its_run(tmp_path):
    """submitit's preemption/timeout signal (SIGUSR2) to a job: the update in progress finishes, a checkpoint is
    written, submitit requeues the job, and the requeued job continues its run from that checkpoint, ending with
    exactly the rows of an uninterrupted run."""
    import signal
    import time

    args = ["algo=a2c", "seed=0", "budget_scale=0.02", "checkpoint_interval_s=3600"]
    _multirun(tmp_path / "reference", *args)
    reference = _rows(tmp_path / "reference" / "moving_bandits" / "a2c" / "s0")
    sweep = tmp_path / "sweep"
    run_dir = sweep / "moving_bandits" / "a2c" / "s0"
    env = dict(os.environ, WANDB_MODE="disabled", MUJOCO_GL="egl")
    cmd = [sys.executable, "-m", "msol.train", "-m", *TINY, *args, "hydra/launcher=submitit_local",
           "hydra.launcher.timeout_min=10", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run_dir / "metrics.jsonl").exists() and len(_rows(run_dir)) >= 5):
        time.sleep(0.05)
    os.kill(int((run_dir / "run.lock").read_text()), signal.SIGUSR2)  # the job's process holds the run's lock
    output, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, output[-3000:]
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "interrupted by SIGUSR2" in logs and "Requeued job" in logs
    assert "continues from its checkpoint" in logs
    assert _strip(_rows(run_dir)) == _strip(reference)


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("fps", "wall_time_s", "finished_at")} for row in rows]


@pytest.mark.slow
def test_local_joblib_launcher_runs_sweep_jobs_in_parallel(tmp_path):
    sweep = tmp_path / "sweep"
    _multirun(sweep, "algo=a2c", "seed=0,1", "hydra/launcher=local", "hydra.launcher.n_jobs=2")
    assert len(list(sweep.glob("moving_bandits/a2c/s*/summary.json"))) == 2


# ------------------------------------------------------------------------------------------ moved locations
@pytest.mark.parametrize(("algo", "expected"), [
    # probe, option-learning env + its eval env, transfer env + its eval env
    ("msol", ["msol/Taxi-v0"] * 3 + ["msol/Taxi8x8Moved-v0"] * 2),
    # probe, then the scratch learner's env + eval env: the moved map, like the transfer it is compared with
    ("a2c", ["msol/Taxi-v0"] + ["msol/Taxi8x8Moved-v0"] * 2),
])
def test_moved_taxi_learns_options_on_the_original_map_and_transfers_on_the_moved_one(
        tmp_path, monkeypatch, algo, expected):
    import msol.common.envs_adapter
    from msol.train import train

    made: list[tuple[str, str]] = []
    real = msol.common.envs_adapter.make_multitask_vector_env

    def spy(env_id, slot_tasks, **kwargs):
        made.append((env_id, kwargs["mode"]))
        return real(env_id, slot_tasks, **kwargs)

    monkeypatch.setattr(msol.common.envs_adapter, "make_multitask_vector_env", spy)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = _compose(["experiment=taxi-moved", "env=taxi_moved", f"algo={algo}", "budget_scale=0.0005", "population=1",
                    "env.hparams.num_slots=2", "env.hparams.envs_per_slot=1", "env.hparams.hidden=[16]",
                    "eval.episodes_per_slot=1", "logger.progress_bar=false"])
    train(cfg, run_dir=tmp_path / "run")
    assert [env_id for env_id, _ in made] == expected
