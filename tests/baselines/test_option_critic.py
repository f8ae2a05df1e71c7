"""Option-Critic (A2OC): ε-greedy value, arrival value, deliberation cost, termination term at s', acting, task-id
inputs for unseen tasks, ``algo=option_critic`` end to end with exact resume, and a short learning run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from plugin_runs import composer, cut_row, interrupted_then_resumed, read_rows, runner, without_timing

from msol.baselines.option_critic.entry import make_oc_phase
from msol.baselines.option_critic.learner import oc_step, task_ids
from msol.baselines.option_critic.losses import (
    a2oc_loss,
    arrival_value,
    deliberation_reward,
    nstep_targets,
    option_value,
    termination_loss,
)
from msol.baselines.option_critic.networks import OptionCriticNetwork, OptionHeads
from msol.common.envs_adapter import make_env
from msol.common.protocol import protocol_phases

compose_cfg = composer("option_critic")
run_train = runner("option_critic", "msol.baselines.option_critic")


def heads(q, beta, logits=None, grad: bool = False) -> OptionHeads:
    q, beta = torch.tensor(q, requires_grad=grad), torch.tensor(beta, requires_grad=grad)
    logits = torch.zeros(*q.shape, 2) if logits is None else torch.tensor(logits, requires_grad=grad)
    return OptionHeads(q, logits, beta)


# ---------------------------------------------------------------------------------------------------- values
def test_epsilon_greedy_option_value_by_hand():
    v = option_value(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), epsilon=0.1)
    assert v.tolist() == pytest.approx([0.9 * 3 + 0.1 * 2, 2.0])


def test_arrival_value_mixes_continuing_and_terminating():
    h = heads([[1.0, 3.0], [1.0, 3.0]], [[0.25, 0.5], [0.25, 0.5]])
    u = arrival_value(h, torch.tensor([0, 1]), epsilon=0.1)
    assert u.tolist() == pytest.approx([0.75 * 1 + 0.25 * 2.9, 0.5 * 3 + 0.5 * 2.9])


def test_deliberation_cost_is_paid_on_switches_only():
    r = deliberation_reward(torch.tensor([1.0, 0.0, 0.5]), torch.tensor([1.0, 0.0, 1.0]), eta=0.02)
    assert r.tolist() == pytest.approx([0.98, 0.0, 0.48])


def test_nstep_target_by_hand():
    col = lambda values: torch.tensor(values).view(-1, 1)
    zeros = col([0.0, 0.0, 0.0])
    y = nstep_targets(col([1.0, 0.0, 1.0]), col([0.0, 1.0, 0.0]), zeros, zeros, zeros, torch.tensor([2.0]),
                      gamma=0.9, eta=0.5)
    y2 = 1 + 0.9 * 2
    y1 = -0.5 + 0.9 * y2
    assert y[:, 0].tolist() == pytest.approx([1 + 0.9 * y1, y1, y2])
    terminated = col([0.0, 1.0, 0.0])  # an episode ends at t=1: no bootstrap across it
    y = nstep_targets(col([1.0, 0.0, 1.0]), zeros, terminated, zeros, zeros, torch.tensor([2.0]), 0.9, 0.5)
    assert y[:, 0].tolist() == pytest.approx([1.0, 0.0, 1 + 1.8])


# ---------------------------------------------------------------------------------------------------- termination at s'
def test_termination_term_at_next_state_by_hand():
    nxt = heads([[1.0, 3.0]], [[0.25, 0.5]])
    loss = termination_loss(nxt, torch.tensor([0]), torch.ones(1), epsilon=0.1, eta=0.02, margin=0.01)
    assert loss.item() == pytest.approx(0.25 * (1 - 2.9 + 0.03))
    assert termination_loss(nxt, torch.tensor([0]), torch.zeros(1), 0.1, 0.02).item() == 0.0


def test_a2oc_loss_by_hand_and_beta_gradient_only_at_the_next_state():
    now = heads([[0.5, 1.0]], [[0.3, 0.3]], logits=[[[0.0, math.log(3.0)], [0.0, 0.0]]], grad=True)
    nxt = heads([[1.0, 3.0]], [[0.25, 0.5]], grad=True)
    loss, _ = a2oc_loss(now, nxt, torch.tensor([0]), torch.tensor([1]), torch.tensor([2.0]), torch.ones(1),
                        epsilon=0.1, eta=0.02, margin=0.01, entropy_coef=0.01)
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    expected = 0.5 * 1.5**2 - math.log(0.75) * 1.5 - 0.01 * entropy + 0.25 * (1 - 2.9 + 0.03)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert now.beta.grad is None                      # β at s is not trained (the public-port bug)
    assert nxt.beta.grad[0].tolist() == pytest.approx([1 - 2.9 + 0.03, 0.0])
    assert nxt.q.grad is None                         # Q(s') enters the termination term as a constant
    assert now.q.grad[0].tolist() == pytest.approx([-1.5, 0.0])  # only the critic moves Q(s, o)


# ---------------------------------------------------------------------------------------------------- acting
def _net(num_tasks: int = 3) -> OptionCriticNetwork:
    torch.manual_seed(0)
    return OptionCriticNetwork(4, num_tasks, 3, num_options=2, hidden=[8])


def test_acting_terminates_at_first_steps_for_free_and_follows_beta_and_epsilon():
    net = _net()
    n = 2000
    obs, task = torch.rand(n, 4), torch.zeros(n, dtype=torch.long)
    prev = torch.ones(n, dtype=torch.long)
    with torch.no_grad():
        net.termination.bias.fill_(-50.0)  # β ≈ 0: options continue
        net.q.bias.copy_(torch.tensor([50.0, 0.0]))  # option 0 is greedy
    first = torch.zeros(n, dtype=torch.bool)
    first[:10] = True
    option, _, switched = oc_step(net, obs, task, prev, first, epsilon=0.0)
    assert (option[10:] == 1).all() and (option[:10] == 0).all()  # first steps choose (greedily), no cost
    assert switched.sum() == 0
    with torch.no_grad():
        net.termination.bias.fill_(50.0)  # β ≈ 1: every option terminates
    option, _, switched = oc_step(net, obs, task, prev, first, epsilon=0.0)
    assert (option == 0).all() and switched[10:].eq(1).all() and switched[:10].eq(0).all()
    option, _, _ = oc_step(net, obs, task, prev, first, epsilon=1.0)  # uniform choice
    assert option.float().mean().item() == pytest.approx(0.5, abs=0.05)


def test_task_id_is_a_one_hot_over_all_tasks_and_unseen_task_inputs_stay_untrained_until_transfer():
    train_tasks = ["R-G", "R-Y", "R-B", "G-R", "G-Y", "G-B", "Y-R", "Y-G"]
    cfg = compose_cfg("env=taxi", f"env.train_tasks=[{','.join(train_tasks)}]",
                      "env.transfer_tasks=[Y-B,B-R,B-G,B-Y]", "env.hparams.num_slots=8",
                      "env.hparams.envs_per_slot=1", "env.hparams.hidden=[16]")
    options, transfer = protocol_phases(cfg)
    env = make_env(cfg, options.slot_tasks, mode=options.mode, envs_per_slot=1, seed=0)
    phase = make_oc_phase(cfg, options, env, None)
    first_layer = phase.model.trunk[0].weight  # [hidden, 72 obs + 12 task ids]
    assert first_layer.shape[1] == 72 + 12
    unseen = [env.tasks.index(t) for t in ("Y-B", "B-R", "B-G", "B-Y")]
    initial = first_layer[:, 72:].detach().clone()
    phase.start(seed=0)
    for _ in range(3):
        phase.iterate()
    trained = (first_layer[:, 72:] - initial).abs().sum(dim=0).detach()
    assert (trained[unseen] == 0).all() and (np.delete(trained.numpy(), unseen) > 0).all()

    env2 = make_env(cfg, transfer.slot_tasks, mode=transfer.mode, envs_per_slot=1, seed=1)
    phase2 = make_oc_phase(cfg, transfer, env2, phase)
    assert phase2.model is phase.model  # the same network keeps learning on the new task ids
    assert sorted(task_ids(env2, device=torch.device("cpu")).tolist()) == sorted(unseen)
    phase2.start(seed=1)
    phase2.iterate()
    assert ((first_layer[:, 72:] - initial).abs().sum(dim=0)[unseen] > 0).all()


# ---------------------------------------------------------------------------------------------------- end to end
TINY = ["env=moving_bandits", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=2",
        "algo.option_frames_per_task=300", "algo.transfer_frames_per_task=100",
        "env.hparams.eval_interval_frames_per_task=100", "env.hparams.log_interval_frames_per_task=50",
        "eval.episodes_per_slot=1", "logger.progress_bar=false", "checkpoint_interval_s=0.0001"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("oc") / "full"
    with pytest.MonkeyPatch.context() as monkeypatch:
        summary = run_train(monkeypatch, run_dir, TINY)
    return run_dir, summary


def test_cli_run_writes_both_phases_and_checkpoints(tiny_run):
    run_dir, summary = tiny_run
    for name in ("config.yaml", "summary.json", "checkpoints/options.pt", "checkpoints/transfer.pt"):
        assert (run_dir / name).exists(), name
    rows = read_rows(run_dir)
    assert {r["phase"] for r in rows} == {"options", "options/eval", "transfer", "transfer/eval"}
    train_rows = [r for r in rows if r["phase"] == "options"]
    assert train_rows[-1]["frames_per_task"] == 300
    assert {"loss/critic", "loss/termination", "termination_rate", "option_usage/0"} <= set(train_rows[-1])
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert summary["objective"] == [r for r in rows if r["phase"] == "transfer/eval"][-1]["return/mean"]


@pytest.mark.parametrize("where", ["options", "phase change", "transfer"])
def test_interrupted_run_resumes_to_the_same_metrics(monkeypatch, tmp_path, tiny_run, where):
    expected = without_timing(read_rows(tiny_run[0]))
    rows = interrupted_then_resumed(monkeypatch, run_train, tmp_path / "cut", TINY, cut_row(expected, where))
    assert without_timing(rows) == expected


def test_bad_value_is_named(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"algo.deliberation_cost=-1: must be a number >= 0"):
        run_train(monkeypatch, tmp_path / "run", [*TINY, "algo.deliberation_cost=-1"])


# ---------------------------------------------------------------------------------------------------- learning
@pytest.mark.learning(seed=0)
def test_short_run_on_one_taxi_task_rises_clearly_above_random(monkeypatch, tmp_path, learning_seed, learning_margin):
    overrides = [f"seed={learning_seed}", "env=taxi", "env.train_tasks=[R-G]", "env.transfer_tasks=[R-G]", "env.hparams.num_slots=2",
                 "env.hparams.envs_per_slot=4", "env.hparams.hidden=[64]", "env.hparams.encoder_output_size=64",
                 "algo.lr=1e-2",
                 "algo.option_frames_per_task=12000", "algo.transfer_frames_per_task=1",
                 "env.hparams.eval_interval_frames_per_task=100000", "env.hparams.log_interval_frames_per_task=2000",
                 "logger.progress_bar=false"]
    run_train(monkeypatch, tmp_path / "run", overrides)
    rows = [r for r in read_rows(tmp_path / "run") if r["phase"] == "options"]
    # Uniformly random actions on the same task and start distribution, for reference.
    env = make_env(compose_cfg(*overrides), ["R-G"], mode="train", envs_per_slot=32, seed=5)
    env.reset(seed=5)
    rng, random_returns = np.random.default_rng(0), []
    while len(random_returns) < 64:
        random_returns += [r for _, r in env.step(rng.integers(env.action_dim, size=env.num_envs)).episode_returns]
    assert np.mean(random_returns) < -3.5
    trained = np.mean([r["return/mean"] for r in rows[-2:]])
    learning_margin(trained - np.mean(random_returns), 1.5)  # return above random (seeds 0-9: 2.3 to 5.7)
    # the option map of each phase (one panel per task, letters, legend), as MSOL's
    for phase in ("options", "transfer"):
        figure = tmp_path / "run" / "figures" / f"options_{phase}.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 5000


def test_greedy_step_takes_the_argmax_at_every_level():
    from msol.baselines.option_critic.learner import oc_step

    torch.manual_seed(0)
    net = _net()
    obs, task = torch.randn(50, 4), torch.zeros(50, dtype=torch.long)
    first = torch.ones(50, dtype=torch.bool)
    option, action, _ = oc_step(net, obs, task, torch.zeros(50, dtype=torch.long), first, epsilon=1.0, greedy=True)
    heads = net(obs, task)
    assert torch.equal(option, heads.q.argmax(-1))  # ε is ignored
    assert torch.equal(action, heads.logits[torch.arange(50), option].argmax(-1))
