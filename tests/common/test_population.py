"""Populations: each member trains exactly like a single run of its seed, and members share nothing."""

from __future__ import annotations

import json
import os

import pytest
import torch
from helpers import compose_cfg
from hydra import compose, initialize_config_module

from msol.common.envs_adapter import make_env
from msol.common.population import (
    PopulationEnv,
    clip_grad_norm_per_member,
    consistent_checkpoints,
    member_run_dirs,
    population_dirs,
    write_population_file,
)
from msol.common.protocol import PhaseSpec, build_phases, task_names
from msol.soft_options.trainer import make_msol_phase

# Tiny networks, 3 slots, a slot reset every 60 frames per task: 20 updates cross several resets.
TINY = {
    "moving_bandits": ["env=moving_bandits", "env.hparams.hidden=[16]", "env.hparams.encoder_output_size=16",
                       "env.hparams.option_embedding=4", "env.hparams.envs_per_slot=2", "env.hparams.num_slots=3"],
    "taxi": ["env=taxi", "env.hparams.hidden=[16]", "env.hparams.encoder_output_size=16",
             "env.hparams.option_embedding=4", "env.hparams.envs_per_slot=2", "env.hparams.num_slots=3"],
}


def _cfg(env: str, *overrides: str):
    return compose_cfg(*TINY[env], *overrides)


def _phase(cfg, seeds: list[int]):
    spec = build_phases(cfg, task_names(cfg))[0]
    spec = PhaseSpec(spec.name, spec.tasks, spec.mode, spec.num_slots, 10_000, 60, spec.slot_tasks)
    env = PopulationEnv([make_env(cfg, spec.slot_tasks, mode=spec.mode, envs_per_slot=2, seed=s * 1000)
                         for s in seeds])
    phase = make_msol_phase(cfg, spec, env, None, [torch.Generator().manual_seed(s) for s in seeds])
    phase.start(seeds=[s * 1000 for s in seeds])
    return phase


@pytest.mark.parametrize("env,loss", [("moving_bandits", "a2c"), ("taxi", "a2c"), ("moving_bandits", "ppo")])
def test_members_match_single_runs_of_their_seeds(float64, env, loss):
    cfg = _cfg(env, f"algo.loss={loss}", "algo.ppo_minibatches=2", "algo.ppo_epochs=2")
    seeds = [0, 1, 2]
    population = _phase(cfg, seeds)
    _train_and_compare(population, [_phase(cfg, [s]) for s in seeds])
    assert population.slot_resets_done.sum() > 3  # the resets were crossed


def _train_and_compare(population, singles, updates: int = 20) -> None:
    """``updates`` iterations of the population and of each member's single run: every update's statistics, then
    the parameters and the episodes' returns, agree to 1e-9."""
    for _ in range(updates):
        for learner in (population, *singles):
            learner.iterate()
        for member, single in enumerate(singles):
            want, got = single.update_stats[0][-1], population.update_stats[member][-1]
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    for member, single in enumerate(singles):
        want, got = single.model.state_dict(), population.model.member(member).state_dict()
        assert all(torch.allclose(want[k], got[k], rtol=0, atol=1e-9) for k in want)
        assert [r for _, r in single.episodes[0]] == pytest.approx([r for _, r in population.episodes[member]])


def _mlsh_phase(cfg, seeds: list[int]):
    from msol.baselines.mlsh.entry import make_mlsh_phase
    from msol.common.protocol import protocol_phases

    spec = protocol_phases(cfg)[0]
    env = PopulationEnv([make_env(cfg, spec.slot_tasks, mode=spec.mode, envs_per_slot=2, seed=s * 1000)
                         for s in seeds])
    phase = make_mlsh_phase(cfg, spec, env, None, [torch.Generator().manual_seed(s) for s in seeds])
    phase.start(seeds=[s * 1000 for s in seeds])
    return phase


def test_mlsh_members_match_single_runs_of_their_seeds(float64):
    """MLSH's members make different numbers of PPO steps (each cuts its own macro steps into minibatches of 4;
    Taxi's episodes end at different times, so members have different numbers of macro steps): a member that has
    no minibatch left sits out, as its own optimiser would."""
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=["env=taxi", "algo=mlsh", "algo.hidden=[16]", "algo.warmup=2",
                                          "algo.joint=1", "algo.rollout_steps=40", "algo.ppo_epochs=2",
                                          "algo.master_batch_size=4", "algo.sub_minibatches=3",
                                          "env.hparams.num_slots=3", "env.hparams.envs_per_slot=2"])
    seeds = [0, 1, 2]
    population = _mlsh_phase(cfg, seeds)
    _train_and_compare(population, [_mlsh_phase(cfg, [s]) for s in seeds])
    assert any("sub/loss_policy" in row for row in population.update_stats[0])  # joint iterations were crossed
    steps = population.master_opt.state[population.model.master_pi.layers[0].weight]["step"]
    assert len(set(steps.tolist())) > 1  # members made different numbers of steps


def test_changing_one_member_does_not_change_another_members_update():
    cfg = _cfg("moving_bandits")
    a, b = _phase(cfg, [0, 1]), _phase(cfg, [0, 1])
    with torch.no_grad():
        for param in b.policy.parameters():
            param[1].add_(torch.randn_like(param[1]))  # member 1 of b: other parameters
    a.iterate()
    b.iterate()
    want, got = a.policy.member(0).state_dict(), b.policy.member(0).state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert not torch.equal(a.policy.member(1).encoder.trunk[0].weight, b.policy.member(1).encoder.trunk[0].weight)


def test_gradient_clipping_is_per_member():
    weight = torch.nn.Parameter(torch.zeros(2, 3, 4))
    bias = torch.nn.Parameter(torch.zeros(2, 4))
    weight.grad = torch.stack([torch.full((3, 4), 0.01), torch.full((3, 4), 1e6)])
    bias.grad = torch.stack([torch.full((4,), 0.02), torch.full((4,), 1e6)])
    small = (weight.grad[0].clone(), bias.grad[0].clone())
    norms = clip_grad_norm_per_member([weight, bias], max_norm=0.5, members=2)
    assert torch.equal(weight.grad[0], small[0]) and torch.equal(bias.grad[0], small[1])  # below the limit: as is
    clipped = torch.cat([weight.grad[1].flatten(), bias.grad[1].flatten()]).norm()
    assert clipped == pytest.approx(0.5, rel=1e-5) and norms[1] > 1e6
    # the same as torch's own clipping of that member alone
    alone = [torch.nn.Parameter(torch.zeros(3, 4)), torch.nn.Parameter(torch.zeros(4))]
    alone[0].grad, alone[1].grad = torch.full((3, 4), 1e6), torch.full((4,), 1e6)
    torch.nn.utils.clip_grad_norm_(alone, 0.5)
    assert torch.allclose(alone[0].grad, weight.grad[1]) and torch.allclose(alone[1].grad, bias.grad[1])


def test_member_run_directories_are_named_like_single_runs(tmp_path):
    assert member_run_dirs(tmp_path / "x_s4", 4, [4]) == [tmp_path / "x_s4"]
    assert member_run_dirs(tmp_path / "2026_s4", 4, [4, 5]) == [tmp_path / "2026_s4", tmp_path / "2026_s5"]
    assert member_run_dirs(tmp_path / "sweep" / "s0", 0, [0, 1]) == [tmp_path / "sweep" / "s0", tmp_path / "sweep" / "s1"]
    assert member_run_dirs(tmp_path / "mine", 0, [0, 1]) == [tmp_path / "mine" / "s0", tmp_path / "mine" / "s1"]
    dirs = [tmp_path / "a" / "s0", tmp_path / "a" / "s1"]
    for d in dirs:
        d.mkdir(parents=True)
    write_population_file(dirs, [0, 1])
    assert population_dirs(dirs[1]) == [d.resolve() for d in dirs]
    assert json.loads((dirs[0] / "population.json").read_text())["run_dirs"] == [".", "../s1"]


def test_resume_picks_the_step_every_member_holds(tmp_path):
    from msol.common.checkpoint import save_atomic

    def write(run_dir, name, frames):
        save_atomic({"format": 5, "metrics_rows": 0, "phase_index": 0, "frames": frames},
                    run_dir / "checkpoints" / f"{name}.pt")

    ahead, behind, between = tmp_path / "s0", tmp_path / "s1", tmp_path / "s2"
    write(ahead, "latest", 200)   # wrote step 200 before the kill
    write(ahead, "previous", 100)
    write(behind, "latest", 100)  # killed before its write of step 200
    write(behind, "previous", 50)
    write(between, "previous", 100)  # killed between moving latest.pt aside and writing the new one
    assert consistent_checkpoints([ahead, behind, between]) == ["previous", "latest", "previous"]


def test_a_population_writes_one_single_run_directory_per_member(tmp_path):
    from msol.plot import aggregate, find_run_dirs, load_curve
    from msol.train import train

    base = ["env=moving_bandits", "budget_scale=0.002", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
            "logger.progress_bar=false"]
    summary = train(compose_cfg(*base, "population=2", f"run_dir={tmp_path / 'pop' / 's3'}", "seed=3"))
    assert len(summary["members"]) == 2
    single = tmp_path / "single" / "s4"
    train(compose_cfg(*base, f"run_dir={single}", "seed=4"))
    member = tmp_path / "pop" / "s4"
    assert {p.name for p in member.iterdir()} == {p.name for p in single.iterdir()} | {"population.json"}
    assert (member / "config.yaml").read_text().count("seed: 4") == 1
    curves = [load_curve(d) for d in find_run_dirs(tmp_path / "pop")]
    assert sorted(c.seed for c in curves) == [3, 4] and all(c.finished for c in curves)
    assert aggregate(curves)  # msol.plot's aggregation takes them like the runs of a sweep


def test_learners_of_one_run_train_a_population_one_member_after_another(tmp_path):
    """Option-Critic (a learner of one run): members train one after another; ``resume=<first member>`` after
    member 1 was lost starts it again, and it ends exactly as the first time."""
    import shutil
    import subprocess
    import sys

    from msol.train import train

    overrides = ["env=moving_bandits", "algo=option_critic", "budget_scale=0.0003",
                 "env.hparams.eval_interval_frames_per_task=500000", "env.hparams.num_slots=2",
                 "env.hparams.envs_per_slot=2", "logger.progress_bar=false", "population=2"]
    first, second = tmp_path / "s0", tmp_path / "s1"
    summary = train(compose_cfg(*overrides, f"run_dir={first}"))
    assert [m["objective"] for m in summary["members"]] == [json.loads((d / "summary.json").read_text())["objective"]
                                                            for d in (first, second)]
    rows = (second / "metrics.jsonl").read_text()
    shutil.rmtree(second)  # as if the process had stopped before member 1 started
    second.mkdir()
    (second / "population.json").write_text((first / "population.json").read_text().replace('".",', '"../s0",')
                                            .replace('"../s1"', '"."'))
    done = subprocess.run([sys.executable, "-m", "msol.train", f"resume={first}"], check=False, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "WANDB_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-2000:]
    timing = ("fps", "wall_time_s")
    strip = [[{k: v for k, v in json.loads(line).items() if k not in timing} for line in text.splitlines()]
             for text in (rows, (second / "metrics.jsonl").read_text())]
    assert strip[1] == strip[0]


def test_msol_and_frozen_learn_the_options_once(tmp_path):
    """``algo=msol_and_frozen``: MSOL's run, then MSOL(frozen)'s transfer from its option learning, each in the
    directory a separate run would have; the frozen run's option-learning rows are MSOL's."""
    from msol.train import train

    lead = tmp_path / "mb" / "msol" / "s0"
    train(compose_cfg("env=moving_bandits", "algo=msol_and_frozen", "budget_scale=0.002", "env.hparams.num_slots=2",
                   "env.hparams.envs_per_slot=2", "logger.progress_bar=false", "population=2", f"run_dir={lead}"))
    for seed in (0, 1):
        soft, frozen = tmp_path / "mb" / "msol" / f"s{seed}", tmp_path / "mb" / "msol_frozen" / f"s{seed}"
        assert (soft / "summary.json").exists() and (frozen / "summary.json").exists()
        rows = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (soft, frozen)]
        options = [[r for r in run if r["phase"].startswith("options")] for run in rows]
        assert options[0] and [r["step"] for r in options[1]] == [r["step"] for r in options[0]]
        assert [r.get("return/mean") for r in options[1]] == [r.get("return/mean") for r in options[0]]
        config = (frozen / "config.yaml").read_text()
        assert "name: msol_frozen" in config and f"init_from: {soft}" in config and f"seed: {seed}" in config
