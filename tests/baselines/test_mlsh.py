"""MLSH: schedule, macro-step rewards and advantages, PPO terms, shared/frozen sub-policies, the diversity probe,
``algo=mlsh`` end to end with exact resume, and a short learning run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from plugin_runs import composer, cut_row, interrupted_then_resumed, read_rows, runner, without_timing

from msol.baselines.mlsh.entry import make_mlsh_phase
from msol.baselines.mlsh.learner import mlsh_step
from msol.baselines.mlsh.losses import (
    group_mean,
    group_rows,
    macro_gae,
    member_minibatches,
    normalize_per_group,
    ppo_terms,
    schedule,
    slot_offsets,
)
from msol.baselines.mlsh.networks import MLSHPolicy
from msol.baselines.mlsh.probe import destinations, diversity_metrics
from msol.common.envs_adapter import make_env
from msol.common.population import PopulationEnv
from msol.common.protocol import protocol_phases

compose_cfg = composer("mlsh")
run_train = runner("mlsh", "msol.baselines.mlsh")


def _learner(cfg, spec, seed: int, previous=None):
    """The phase learner of a single run (a population of one) on 2 envs per slot, started."""
    env = PopulationEnv([make_env(cfg, spec.slot_tasks, mode=spec.mode, envs_per_slot=2, seed=seed)])
    phase = make_mlsh_phase(cfg, spec, env, previous, [torch.Generator().manual_seed(seed)])
    phase.start(seeds=[seed])
    return phase


# ---------------------------------------------------------------------------------------------------- schedule
def test_schedule_warmup_then_joint_then_new_task():
    joint = [it for it in range(30) if schedule(it, 0, warmup=9, joint=1)[1]]
    new = [it for it in range(30) if schedule(it, 0, warmup=9, joint=1)[0]]
    assert joint == [9, 19, 29]
    assert new == [10, 20]  # iteration 0 uses the initial master and task


def test_staggered_slot_gets_a_longer_first_warmup():
    # Like worker rank 3 in the MLSH code: 3 extra warm-up iterations before the first cycle ends.
    assert [it for it in range(30) if schedule(it, 3, 9, 1)[1]] == [12, 22]
    assert [it for it in range(30) if schedule(it, 3, 9, 1)[0]] == [13, 23]
    assert slot_offsets(10, 10, stagger=True) == list(range(10))
    assert slot_offsets(4, 10, stagger=False) == [0, 0, 0, 0]
    # With 10 staggered slots and W + U = 10, exactly one slot is in its joint iteration from iteration 18 on.
    offsets = slot_offsets(10, 10, stagger=True)
    assert all(sum(schedule(it, o, 9, 1)[1] for o in offsets) == 1 for it in range(18, 60))


# ---------------------------------------------------------------------------------------------------- macro level
def _macro_case(terminated_at_4: bool):
    T = 7
    col = lambda values: torch.tensor(values, dtype=torch.float32).view(T, 1)
    reward = col([1, 0, 1, 0, 1, 1, 1])
    decide = col([1, 0, 0, 1, 0, 1, 0])  # macro steps [0..2], [3..4] (episode ends at 4), [5..6]
    end = col([0, 0, 0, 0, 1, 0, 0])
    terminated, truncated = (end, torch.zeros_like(end)) if terminated_at_4 else (torch.zeros_like(end), end)
    value = col([0.5, 0, 0, 0.2, 0, 0.4, 0])
    bootstrap = col([0, 0, 0, 0, 0.7, 0, 0])
    return macro_gae(reward, decide, terminated, truncated, value, bootstrap, torch.tensor([0.3]), 0.9, 0.8)


def test_macro_reward_is_the_sum_of_the_primitive_rewards_of_each_macro_step():
    _, macro_reward = _macro_case(terminated_at_4=False)
    assert macro_reward[[0, 3, 5], 0].tolist() == [2.0, 1.0, 2.0]


def test_macro_gae_by_hand_truncation_bootstraps_termination_cuts():
    adv, _ = _macro_case(terminated_at_4=False)
    adv5 = 2 + 0.9 * 0.3 - 0.4              # last macro step bootstraps V(s_T)
    adv3 = 1 + 0.9 * 0.7 - 0.2              # time-limit cut: V(final obs), no advantage carried over
    adv0 = (2 + 0.9 * 0.2 - 0.5) + 0.9 * 0.8 * adv3
    assert adv[[0, 3, 5], 0].tolist() == pytest.approx([adv0, adv3, adv5])
    adv, _ = _macro_case(terminated_at_4=True)
    assert adv[[0, 3], 0].tolist() == pytest.approx([(2 + 0.18 - 0.5) + 0.72 * (1 - 0.2), 1 - 0.2])


# ---------------------------------------------------------------------------------------------------- PPO pieces
def test_ppo_terms_by_hand():
    logp = torch.log(torch.tensor([1.5, 1.5]))
    L_pi, L_V = ppo_terms(logp, torch.zeros(2), torch.tensor([2.0, -2.0]), torch.tensor([0.5, 0.5]),
                          torch.zeros(2), torch.ones(2), clip=0.2)
    assert L_pi.tolist() == pytest.approx([-2.4, 3.0])         # min(1.5·2, 1.2·2); min(−3, −2.4)
    assert L_V.tolist() == pytest.approx([0.32, 0.32])         # ½ max((0.5−1)², (0.2−1)²)


def test_a_padding_row_adds_nothing_and_keeps_gradients_finite():
    # row 2 pads a block: its recorded log-probability belongs to another learner (exp(800) would overflow)
    logp = torch.tensor([-1.0, -0.5, 0.0], requires_grad=True)
    value = torch.tensor([0.3, -0.2, 5.0], requires_grad=True)
    valid = torch.tensor([True, True, False])
    old_logp, adv = torch.tensor([-1.1, -0.4, -800.0]), torch.tensor([1.0, -2.0, -3.0])
    old_value, returns = torch.tensor([0.2, 0.0, -9.0]), torch.tensor([1.0, -1.0, 40.0])
    L_pi, L_V = ppo_terms(logp, old_logp, adv, value, old_value, returns, clip=0.2)
    loss = group_mean(L_pi + L_V, torch.tensor([0, 0, 1]), 2, weight=valid)
    loss.backward()
    assert torch.isfinite(logp.grad).all() and torch.isfinite(value.grad).all()
    assert logp.grad[2] == 0 and value.grad[2] == 0
    want_pi, want_V = ppo_terms(logp[:2], old_logp[:2], adv[:2], value[:2], old_value[:2], returns[:2], clip=0.2)
    assert loss.item() == pytest.approx((want_pi + want_V).mean().item())


def test_a_huge_ratio_of_a_forced_sub_policy_keeps_the_loss_and_gradients_finite():
    # the master gave the executed (randomly forced) sub-policy log-probability -128; one update later -5
    logp = torch.tensor([-5.0, -0.1], requires_grad=True)
    for adv in (torch.tensor([1.5, 0.5]), torch.tensor([-1.5, 0.5])):
        L_pi, L_V = ppo_terms(logp, torch.tensor([-128.0, -0.2]), adv, torch.zeros(2), torch.zeros(2),
                              torch.ones(2), clip=0.2)
        (L_pi + L_V).sum().backward()
        assert torch.isfinite(L_pi).all() and torch.isfinite(logp.grad).all()
        logp.grad = None


def test_group_mean_trains_each_learner_on_its_own_mean():
    assert group_mean(torch.tensor([1.0, 2.0, 3.0, 10.0]), torch.tensor([0, 0, 0, 1]), 3).item() == 12.0
    x = torch.tensor([1.0, 3.0, 10.0, 10.0])
    assert normalize_per_group(x, torch.tensor([0, 0, 1, 1]), 2).tolist() == [-1.0, 1.0, 0.0, 0.0]


def test_member_minibatches_give_each_group_of_each_member_its_own_batches():
    # member 0: 130 rows of group 0 and 40 of group 1; member 1: 20 rows of group 1 only
    member = torch.tensor([0] * 170 + [1] * 20)
    group = torch.tensor([0] * 130 + [1] * 40 + [1] * 20)
    rows_of = group_rows(member, group, 2, 2)
    batches = member_minibatches(rows_of, [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)],
                                 batch_size=64)
    assert len(batches) == 3  # ceil(130 / 64)
    assert [b.active.tolist() for b in batches] == [[True, True], [True, False], [True, False]]
    for batch in batches:  # layout [member, group, width]: each block holds its own group's rows
        rows, valid = batch.rows.view(2, 2, -1), batch.valid.view(2, 2, -1)
        for k in range(2):
            for g in range(2):
                picked = rows[k, g][valid[k, g]]
                assert (member[picked] == k).all() and (group[picked] == g).all() and picked.numel() <= 64
    picked = torch.cat([b.rows[b.valid] for b in batches])
    assert sorted(picked.tolist()) == list(range(190))  # every row once per epoch
    alone = member_minibatches(group_rows(member[:170], group[:170], 1, 2), [torch.Generator().manual_seed(0)],
                               batch_size=64)  # member 0 alone draws the same minibatches
    for together, single in zip(batches, alone, strict=True):
        assert torch.equal(together.rows.view(2, -1)[0][together.valid.view(2, -1)[0]], single.rows[single.valid])
    batches = member_minibatches(rows_of, [None, None], num_batches=15)
    assert len(batches) == 15 and sorted(torch.cat([b.rows[b.valid] for b in batches]).tolist()) == list(range(190))
    with pytest.raises(ValueError, match="exactly one"):
        member_minibatches(rows_of, [None, None])


# ---------------------------------------------------------------------------------------------------- acting
def _policy(num_slots=2, num_subs=2) -> MLSHPolicy:
    torch.manual_seed(0)
    return MLSHPolicy(6, 5, num_slots=num_slots, num_subs=num_subs, hidden=[8, 8])


def test_master_choice_continues_between_decisions_and_is_randomised():
    policy = _policy()
    with torch.no_grad():  # every master strongly prefers sub-policy 0
        policy.master_pi.layers[-1].bias[..., 0] = 50.0
    obs, slot = torch.rand(4000, 6), torch.zeros(4000, dtype=torch.long)
    z_prev = torch.ones(4000, dtype=torch.long)
    keep = mlsh_step(policy, obs, slot, z_prev, torch.zeros(4000, dtype=torch.bool), random_sub_prob=0.1)
    assert (keep.z == 1).all()
    chosen = mlsh_step(policy, obs, slot, z_prev, torch.ones(4000, dtype=torch.bool), random_sub_prob=0.1)
    # Replaced by a uniform sub-policy w.p. 0.1 → sub-policy 1 w.p. 0.05.
    assert (chosen.z == 1).float().mean().item() == pytest.approx(0.05, abs=0.015)
    assert chosen.master_logp[chosen.z == 1].max() < -40  # log-prob of what was executed, under the master


def test_master_decides_every_n_steps_and_at_episode_starts():
    cfg = compose_cfg("env=moving_bandits", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
                      "algo.rollout_steps=60")
    spec = protocol_phases(cfg)[0]
    phase = _learner(cfg, spec, seed=0)
    phase.collect()
    decided = phase.storage.decide[:, 0].nonzero().squeeze(-1).tolist()
    assert decided == [0, 10, 20, 30, 40, 50]  # episodes of 50 steps: step 50 is both a start and a 10th step
    z = phase.storage.z
    assert (z[1:10] == z[0]).all()


# ---------------------------------------------------------------------------------------------------- schedule in the learner
def test_learner_resets_masters_on_schedule_and_updates_subs_only_in_joint_iterations():
    cfg = compose_cfg("env=moving_bandits", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
                      "algo.rollout_steps=20", "algo.warmup=2", "algo.joint=1", "algo.ppo_epochs=1",
                      "algo.sub_minibatches=2")
    spec = protocol_phases(cfg)[0]
    phase = _learner(cfg, spec, seed=0)
    assert phase.offsets == [0, 1]  # staggered over the 3-iteration cycle
    sub_before = [p.detach().clone() for p in phase.model.sub_parameters()]
    for _ in range(2):  # iterations 0, 1: warm-up for slot 0 and (longer first warm-up) slot 1
        phase.iterate()
    assert all(torch.equal(a, b) for a, b in zip(sub_before, phase.model.sub_parameters()))
    phase.iterate()  # iteration 2: slot 0 joint → the shared sub-policies learn
    assert not all(torch.equal(a, b) for a, b in zip(sub_before, phase.model.sub_parameters()))

    master_w = phase.model.master_pi.layers[0].weight
    before = master_w.detach().clone()
    adam_before = phase.master_opt.state[master_w]["exp_avg"].clone()
    joint = phase.begin_iteration()  # iteration 3: slot 0 starts a new task, slot 1 is in its joint iteration
    assert joint.tolist() == [False, True]
    layer = phase.model.master_pi.layers[0]
    assert not torch.equal(layer.slot_weight(0), before[0, :, 0]) and torch.equal(layer.slot_weight(1), before[0, :, 1])
    # The master's Adam state is NOT reset with the master (MLSH code fact).
    assert torch.equal(phase.master_opt.state[master_w]["exp_avg"], adam_before)
    assert adam_before[0, :, 0].abs().sum() > 0


def test_transfer_copies_sub_policies_exactly_freezes_them_and_trains_fresh_masters():
    cfg = compose_cfg("env=moving_bandits", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
                      "algo.rollout_steps=20", "algo.ppo_epochs=1")
    options, transfer = protocol_phases(cfg)
    learned = _learner(cfg, options, seed=0)
    learned.iterate()
    phase = _learner(cfg, transfer, seed=1, previous=learned)
    for a, b in zip(learned.model.sub_parameters(), phase.model.sub_parameters()):
        assert torch.equal(a, b) and not b.requires_grad
    master_before = [p.detach().clone() for p in phase.model.master_parameters()]
    phase.iterate()
    for a, b in zip(learned.model.sub_parameters(), phase.model.sub_parameters()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, b) for a, b in zip(master_before, phase.model.master_parameters()))


# ---------------------------------------------------------------------------------------------------- diversity probe
def test_destinations_and_diversity_metrics_by_hand():
    goals = [100, 100, 300, 300]  # goal0 (100, 100), goal1 (300, 300)
    obs = np.array([[110, 100, *goals], [300, 260, *goals], [190, 200, *goals]], dtype=np.float32) / 400
    nearest, reached = destinations(obs)
    assert nearest.tolist() == [0, 1, 0] and reached.tolist() == [True, True, False]
    nearest = np.array([[0, 1, 0, 1], [0, 0, 1, 1]])  # sub-policy × layout
    reached = np.array([[True, True, True, False], [True, True, True, True]])
    metrics = diversity_metrics(nearest, reached)
    assert metrics == {"options_same_goal": 0.5, "options_cover_both_goals": 0.5, "options_reach_goal": 0.875}


# ---------------------------------------------------------------------------------------------------- end to end
TINY = ["env=moving_bandits", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2", "algo.rollout_steps=50",
        "algo.warmup=1", "algo.joint=1", "algo.ppo_epochs=2", "algo.sub_minibatches=2",
        "algo.option_frames_per_task=600", "algo.transfer_frames_per_task=300",
        "env.hparams.eval_interval_frames_per_task=200", "env.hparams.log_interval_frames_per_task=100",
        "eval.episodes_per_slot=1", "logger.progress_bar=false", "checkpoint_interval_s=0.0001"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    """One uninterrupted tiny run, shared by the tests that inspect it or compare a resumed run with it."""
    run_dir = tmp_path_factory.mktemp("mlsh") / "full"
    with pytest.MonkeyPatch.context() as monkeypatch:
        summary = run_train(monkeypatch, run_dir, TINY)
    return run_dir, summary


def test_cli_run_writes_both_phases_probe_and_checkpoints(tiny_run):
    run_dir, summary = tiny_run
    for name in ("config.yaml", "summary.json", "checkpoints/latest.pt", "checkpoints/options.pt",
                 "checkpoints/transfer.pt"):
        assert (run_dir / name).exists(), name
    rows = read_rows(run_dir)
    assert {r["phase"] for r in rows} == {"options", "options/eval", "transfer", "transfer/eval"}
    options = [r for r in rows if r["phase"] == "options"]
    assert [r["frames_per_task"] for r in options] == [100, 200, 300, 400, 500, 600]
    assert {"master/loss_policy", "sub/loss_policy", "joint_slots"} <= set(options[1])
    evals = [r for r in rows if r["phase"].endswith("/eval")]
    # per-task columns for the tasks the slots hold at that moment (MLSH re-draws each slot's task)
    assert all(0 <= r["options_same_goal"] <= 1 and any(k.startswith("return/goal") for k in r) for r in evals)
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert summary["objective"] == evals[-1]["return/mean"]
    last_options_eval = [r for r in evals if r["phase"] == "options/eval"][-1]
    assert summary["options/same_goal_fraction"] == last_options_eval["options_same_goal"]
    assert not math.isnan(summary["objective"])


@pytest.mark.parametrize("where", ["options", "phase change", "transfer"])
def test_interrupted_run_resumes_to_the_same_metrics(monkeypatch, tmp_path, tiny_run, where):
    expected = without_timing(read_rows(tiny_run[0]))
    rows = interrupted_then_resumed(monkeypatch, run_train, tmp_path / "cut", TINY, cut_row(expected, where))
    assert without_timing(rows) == expected


def test_bad_mlsh_value_is_named(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"algo.random_sub_prob=1.5: must be a probability"):
        run_train(monkeypatch, tmp_path / "run", [*TINY, "algo.random_sub_prob=1.5"])


# ---------------------------------------------------------------------------------------------------- learning
def _random_return(cfg, episodes_per_env: int = 4) -> float:
    env = make_env(cfg, ["R-G"], mode="train", envs_per_slot=16, seed=123)
    env.reset(seed=123)
    rng = np.random.default_rng(0)
    returns: list[float] = []
    while len(returns) < 16 * episodes_per_env:
        out = env.step(rng.integers(env.action_dim, size=env.num_envs))
        returns += [r for _, r in out.episode_returns]
    return float(np.mean(returns))


@pytest.mark.learning(seed=1)
def test_short_run_on_one_taxi_task_rises_clearly_above_random(monkeypatch, tmp_path, learning_seed, learning_margin):
    overrides = ["env=taxi", "env.train_tasks=[R-G]", "env.transfer_tasks=[R-G]", "env.hparams.num_slots=2",
                 "env.hparams.envs_per_slot=4", "algo.num_subs=2", "algo.rollout_steps=100", "algo.warmup=1",
                 "algo.joint=1", "algo.sub_lr=3e-3", "algo.sub_minibatches=4", f"seed={learning_seed}",
                 "algo.option_frames_per_task=12000", "algo.transfer_frames_per_task=1",
                 "env.hparams.eval_interval_frames_per_task=100000", "env.hparams.log_interval_frames_per_task=1500",
                 "logger.progress_bar=false"]
    run_train(monkeypatch, tmp_path / "run", overrides)
    train_rows = [r for r in read_rows(tmp_path / "run") if r["phase"] == "options"]
    random_return = _random_return(compose_cfg(*overrides))
    assert random_return < -3.5
    trained = np.mean([r["return/mean"] for r in train_rows[-2:]])
    learning_margin(trained - random_return, 1.5)  # return above random
    # the option map of each phase (one panel per task, letters, legend), as MSOL's
    for phase in ("options", "transfer"):
        figure = tmp_path / "run" / "figures" / f"options_{phase}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 5000


def test_greedy_step_takes_the_argmax_of_master_and_sub_policy():
    from msol.baselines.mlsh.learner import mlsh_step

    policy = _policy()
    obs, slot = torch.randn(40, 6), torch.tensor([0, 1] * 20)
    decide = torch.ones(40, dtype=torch.bool)
    step = mlsh_step(policy, obs, slot, torch.zeros(40, dtype=torch.long), decide, random_sub_prob=1.0, greedy=True)
    master, _ = policy.master(obs, slot)
    assert torch.equal(step.z, master.logits.argmax(-1))  # no random sub-policy
    sub, _ = policy.sub(obs, step.z)
    assert torch.equal(step.action, sub.logits.argmax(-1))
