"""The shared protocol loop's pieces: intervals, log rows, evaluation episodes, phase budgets, task draws."""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import pytest
import torch
from helpers import compose_cfg

from msol.common.envs_adapter import make_env
from msol.common.protocol import (
    PhaseSpec,
    build_phases,
    draw_slot_task,
    episode_row,
    evaluate_episodes,
    log_intervals,
    mean_stats,
    protocol_phases,
)

_cfg = compose_cfg


def _spec(frames_per_task: int) -> PhaseSpec:
    return PhaseSpec("options", ["goal0"], "train", 2, frames_per_task, None, ["goal0", "goal0"])


def test_log_intervals_are_the_configured_ones_unless_a_phase_is_short():
    cfg = _cfg("env=moving_bandits")  # log every 2500, evaluate every 10000 frames per task
    assert log_intervals(cfg, _spec(600_000)) == (2500, 10_000)
    log_every, eval_every = log_intervals(cfg, _spec(12_000))  # a quick-budget phase
    assert 12_000 // log_every >= 50 and 12_000 // eval_every >= 10
    assert log_intervals(cfg, _spec(3)) == (1, 1)


def test_episode_row_means_per_task_and_overall():
    row = episode_row([(0, 1.0), (1, 3.0), (0, 2.0)], slot_tasks=["R-G", "B-Y"])
    assert row == {"return/mean": 2.0, "episodes": 3, "return/B-Y": 3.0, "return/R-G": 1.5}
    empty = episode_row([], slot_tasks=["R-G"])
    assert math.isnan(empty["return/mean"]) and empty["episodes"] == 0


def test_mean_stats_averages_each_key_over_the_updates_that_have_it():
    assert mean_stats([{"a": 1.0, "b": 4.0}, {"a": 3.0}]) == {"a": 2.0, "b": 4.0}
    assert mean_stats([]) == {}


def test_evaluate_episodes_runs_exactly_one_episode_per_env():
    cfg = _cfg("env=taxi")
    env = make_env(cfg, ["R-G", "B-Y"], mode="test", envs_per_slot=3, seed=0)
    firsts: list[torch.Tensor] = []

    def always_north(obs: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        firsts.append(first.clone())
        return torch.ones(obs.shape[0], dtype=torch.long)  # never delivers: every episode ends by its time limit

    row = evaluate_episodes(env, seed=1, slot_tasks=["R-G", "B-Y"], act=always_north, device=torch.device("cpu"))
    assert torch.equal(firsts[0], torch.ones(6))  # the agent is told every env starts fresh
    assert row["episode_length"] == len(firsts)  # all envs end together, each exactly once
    assert set(row) == {"return/mean", "episode_length", "return/R-G", "return/B-Y"}
    assert row["return/mean"] == pytest.approx(np.mean([row["return/R-G"], row["return/B-Y"]]))


def test_phase_budgets_scale_and_baseline_phases_have_no_slot_resets():
    cfg = _cfg("env=taxi", "budget_scale=0.01")
    phases = build_phases(cfg, [f"t{i}" for i in range(12)])
    assert [p.name for p in phases] == ["options", "transfer"]
    assert phases[0].frames_per_task == 14_000 and phases[1].frames_per_task == 3_000
    assert phases[0].slot_reset_frames == 3_000 and phases[1].slot_reset_frames is None
    mlsh = protocol_phases(_cfg("env=taxi", "algo=mlsh", "budget_scale=0.01"))
    assert all(p.slot_reset_frames is None for p in mlsh)


TAXI_TASKS = list(gymnasium.make("msol/Taxi-v0").unwrapped.tasks)  # the 12 pickup-dropoff pairs


def test_keep_draw_keeps_the_slot_task_and_uniform_is_one_randint():
    assert draw_slot_task(TAXI_TASKS, ["B-Y", "R-G"], 1, "keep") == "R-G"
    torch.manual_seed(3)
    drawn = [draw_slot_task(TAXI_TASKS, TAXI_TASKS, 0, "uniform") for _ in range(20)]
    torch.manual_seed(3)
    assert drawn == [TAXI_TASKS[int(torch.randint(12, (1,)))] for _ in range(20)]


def test_unknown_draw_rule_names_the_valid_ones():
    with pytest.raises(ValueError, match="valid: keep, uniform"):
        draw_slot_task(TAXI_TASKS, TAXI_TASKS, 0, "least_covered")


def test_tasks_are_assigned_to_slots_round_robin():
    options, transfer = build_phases(_cfg("env=moving_bandits"), ["goal0", "goal1"])
    assert options.slot_tasks == ["goal0", "goal1"] * 5  # 5 slots per goal
    assert transfer.num_slots == 10 and transfer.slot_tasks == ["goal0", "goal1"] * 5  # transfer on all 10 slots
    cfg = _cfg("env=moving_bandits", "env.hparams.num_slots=3")
    assert build_phases(cfg, ["goal0", "goal1"])[0].slot_tasks == ["goal0", "goal1", "goal0"]


def test_msol_slot_resets_keep_every_taxi_task_in_its_slot_and_restart_master_and_posteriors():
    from msol.common.population import PopulationEnv
    from msol.soft_options.trainer import make_msol_phase

    cfg = _cfg("env=taxi", "algo=msol", "env.hparams.envs_per_slot=1", "algo.hidden=[16]",
               "algo.encoder_output_size=16", "algo.option_embedding=4")
    tasks = TAXI_TASKS
    spec = PhaseSpec("options", tasks, "train", 12, 10**6, 30, tasks)  # every slot resets every 30 frames per task
    env = make_env(cfg, tasks, mode="train", envs_per_slot=1, seed=0)
    phase = make_msol_phase(cfg, spec, PopulationEnv([env]), None, [torch.Generator().manual_seed(0)])
    phase.start(seeds=[0])
    for _ in range(40):
        phase.iterate()
        assert env.slot_tasks == tasks
    assert phase.slot_resets_done.min() >= 5
    phase.maybe_reset_slots()  # the resets the last collect made due
    before = phase.slot_resets_done.copy()
    phase.frames += 30  # every slot is due once more
    phase.maybe_reset_slots()
    assert (phase.slot_resets_done == before + 1).all() and env.slot_tasks == tasks
    # right after a reset every master is uniform again (policy heads start with gain 0.01) and q^L = p^L
    policy, slot = phase.policy, phase.slot
    with torch.no_grad():
        trunk = policy.trunk(phase.obs)
        probs = policy.master_logits(trunk, slot).softmax(-1)
        f, f_prior = policy.option_features(trunk, phase.z_prev)
        q_L, p_L = policy.action_dists(f, f_prior, slot, phase.z_prev)
    assert torch.allclose(probs, torch.full_like(probs, 0.25), atol=0.01)
    assert torch.allclose(q_L.logits, p_L.logits, atol=1e-6)
