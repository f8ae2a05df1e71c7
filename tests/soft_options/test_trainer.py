"""MSOLLearner: schedules, slot resets of the optimiser, evaluation rows."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_module

from msol.common.envs_adapter import make_env
from msol.common.population import PopulationEnv
from msol.common.protocol import PhaseSpec
from msol.soft_options.trainer import make_msol_phase

TINY = ["env=moving_bandits", "env.hparams.hidden=[16]", "env.hparams.encoder_output_size=16",
        "env.hparams.option_embedding=4", "env.hparams.envs_per_slot=1"]


def _phase(*overrides: str, frames: int = 1000, reset_every: int | None = None,
           tasks: tuple[str, str] = ("goal0", "goal1")):
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, *overrides])
    tasks = list(tasks)
    spec = PhaseSpec("options", tasks, "train", 2, frames, reset_every, tasks)
    env = PopulationEnv([make_env(cfg, tasks, mode="train", envs_per_slot=1, seed=0)])
    phase = make_msol_phase(cfg, spec, env, None, [torch.Generator().manual_seed(0)])
    phase.start(seeds=[0])
    return phase


def test_entropy_weight_anneals_like_beta_then_holds_over_the_final_period():
    phase = _phase("algo.entropy_start=0.1", "algo.entropy_end=0.02", "algo.beta_start=0.02", "algo.beta_end=0.1",
                   "algo.beta_hold_frames_per_task=400")
    for frames, entropy, beta in ((0, 0.1, 0.02), (300, 0.06, 0.06), (600, 0.02, 0.1), (900, 0.02, 0.1)):
        phase.frames = frames  # annealed over the first 1000 - 400 = 600 frames per task, then held
        assert phase.entropy_coef == pytest.approx(entropy) and phase.beta == pytest.approx(beta)


@pytest.mark.parametrize("rule", ["slot", "all"])
def test_slot_reset_clears_the_slots_optimiser_statistics_or_recreates_the_optimiser(rule):
    phase = _phase(f"algo.reset_optimizer={rule}", reset_every=100)
    for _ in range(5):
        phase.iterate()
    before = phase.optimizer
    square = before.state[phase.policy.master.weight]["square_avg"].clone()
    phase.frames = 10 * 100  # every slot is due
    phase.maybe_reset_slots()
    if rule == "all":
        assert phase.optimizer is not before and not phase.optimizer.state  # a fresh optimiser (authors' code)
        return
    after = phase.optimizer.state[phase.policy.master.weight]["square_avg"]
    assert phase.optimizer is before and torch.count_nonzero(after) == 0 and torch.count_nonzero(square) > 0
    shared = phase.optimizer.state[phase.policy.encoder.option_layer.weight]["square_avg"]
    assert torch.count_nonzero(shared) > 0  # shared parameters keep their statistics


@pytest.mark.parametrize("greedy", [True, False])
def test_evaluation_rows_say_whether_they_acted_greedily(greedy):
    phase = _phase(f"eval.greedy={str(greedy).lower()}")
    eval_env = make_env(phase.cfg, ["goal0", "goal1"], mode="train", envs_per_slot=2, seed=1)
    row = phase.evaluate(0, eval_env, seed=0)
    assert row["greedy"] == float(greedy) and {"return/goal0", "return/goal1"} <= row.keys()
    again = phase.evaluate(0, eval_env, seed=0)
    if greedy:  # argmax at every level: the same episodes again
        assert again["return/mean"] == row["return/mean"]


@pytest.mark.parametrize("env, tasks", [("moving_bandits", ("goal0", "goal1")), ("taxi", ("R-G", "B-Y"))])
def test_the_log_probability_stored_while_acting_is_the_one_the_update_recomputes(env, tasks):
    """PPO's first ratio is exactly 1: acting and the update compute the same joint log-probability and value
    (a mismatch, e.g. a termination term counted on the first step of an episode, would bias every update)."""
    from msol.soft_options.losses import joint_logprob, rollout_terms

    phase = _phase("algo.loss=ppo", f"env={env}", tasks=tasks)
    for _ in range(10):  # 50 steps: the next rollout starts new episodes (episodes last 50 steps)
        phase.iterate()
    phase.collect()
    flat = phase.storage.flat(phase.members)
    with torch.no_grad():
        ev = rollout_terms(phase.policy, flat, phase.flat_slot, fixed_termination_prior=1.0 - float(phase.a.alpha))
    torch.testing.assert_close(joint_logprob(ev, flat), flat.old_logp, atol=1e-5, rtol=0)
    torch.testing.assert_close(ev.value, flat.old_value, atol=1e-5, rtol=0)
    assert flat.first.any() and flat.b.any() and not flat.b.all()
