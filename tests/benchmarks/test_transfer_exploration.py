"""benchmarks/transfer_exploration.py: pickups and deliveries of a transfer's first policy, on both maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import compose_cfg
from omegaconf import OmegaConf

from benchmarks.transfer_exploration import explore, main, report, transfer_start_policy
from msol.common.envs_adapter import make_env


@pytest.fixture(scope="module")
def options_run(tmp_path_factory):
    """A tiny MSOL run on Taxi 8x8 with moved locations, stopped after its option learning."""
    from msol.train import train

    run_dir = tmp_path_factory.mktemp("transfer_exploration") / "run"
    cfg = compose_cfg("experiment=taxi-moved", "env=taxi_moved", "algo=msol", "budget_scale=0.0005", "population=1",
                      "algo.phases=[options]", "env.hparams.num_slots=2", "env.hparams.envs_per_slot=1",
                      "env.hparams.hidden=[16]", "eval.episodes_per_slot=1", "logger.progress_bar=false",
                      "logger.wandb=false")
    train(cfg, run_dir=run_dir)
    return run_dir


def test_a_delivery_is_counted_as_a_pickup_and_shows_in_the_return(options_run):
    """Uniform random actions on the original map from a train-mode start (passenger aboard in half the episodes):
    the counts agree with the returns, whose only positive reward is the delivery (50 steps of -0.1 without one)."""
    cfg = OmegaConf.load(options_run / "config.yaml")
    env = make_env(cfg, ["R-G", "G-R"], mode="train", envs_per_slot=400, seed=3)
    result = explore(env, None, seed=3)
    assert np.all(result.delivery <= result.pickup) and result.delivery.sum() > 0
    assert np.all(result.pickup > 0.45)  # half the episodes start with the passenger aboard
    assert result.mean_return > -5.0


def test_the_transfer_start_policy_has_a_fresh_uniform_master_over_the_learned_priors(options_run):
    cfg = OmegaConf.load(options_run / "config.yaml")
    env = make_env(cfg, ["R-G", "B-Y", "G-R"], mode="test", envs_per_slot=2, seed=0, transfer=True)
    policy = transfer_start_policy(options_run, env, seed=0)
    obs = torch.eye(env.obs_dim)
    master = policy.master_logits(policy.trunk(obs), torch.zeros(env.obs_dim, dtype=torch.long)).softmax(-1)
    assert torch.allclose(master, torch.full_like(master, 1 / master.shape[-1]), atol=0.05)
    result = explore(env, policy, seed=0)
    assert result.pickup.shape == (3,) and np.all((0 <= result.delivery) & (result.delivery <= result.pickup))


def test_report_has_both_maps_and_both_policies_and_main_refuses_a_run_without_options(options_run, tmp_path, capsys):
    table = report(options_run, episodes=20, seed=0)
    rows = [line for line in table.splitlines() if line.startswith("| msol/")]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| msol/Taxi-v0", "transfer start"], ["| msol/Taxi-v0", "uniform random"],
        ["| msol/Taxi8x8Moved-v0", "transfer start"], ["| msol/Taxi8x8Moved-v0", "uniform random"]]
    assert all(row.endswith(" |") and "/ 240 |" in row for row in rows)  # 20 episodes x 12 transfer tasks
    with pytest.raises(SystemExit, match="needs config.yaml and checkpoints/options.pt"):
        main([str(tmp_path)])
