"""The option pictures drawn at the end of each phase."""

from __future__ import annotations

import numpy as np
import torch
from hydra import compose, initialize_config_module

from msol.common.envs_adapter import make_env
from msol.soft_options.figures import plot_options
from msol.soft_options.networks import HierarchicalPolicy
from msol.soft_options.option_probe import (
    moving_bandits_option_paths,
    option_destinations,
    same_goal_fraction,
)
from msol.soft_options.trainer import _make_policy


def test_taxi_option_map_is_written(tmp_path):
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=["env=taxi", "env.hparams.hidden=[32,16]", "env.hparams.encoder_output_size=32"])
    env = make_env(cfg, ["R-G", "B-Y"], mode="train", envs_per_slot=1, seed=0)
    path = plot_options(_make_policy(cfg, env, 2), env, tmp_path / "options.png")
    assert path is not None and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_moving_bandits_probe_detects_options_heading_to_the_same_goal():
    torch.manual_seed(0)
    policy = HierarchicalPolicy(6, 5, continuous=False, num_slots=1, num_options=2, hidden=[8],
                                encoder_output_size=8)
    with torch.no_grad():  # both options: always "x+20" -> identical paths -> same goal in every layout
        policy.prior_intra.weight.zero_()
        policy.prior_intra.bias.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0]))
    assert same_goal_fraction(policy, layouts=64) == 1.0
    paths, goals = moving_bandits_option_paths(policy, layouts=4, steps=3)
    assert paths.shape == (2, 4, 4, 2) and np.allclose(paths[:, :, -1, 0], 260.0)
    # destinations are the nearest goal to the end point
    dest = option_destinations(paths, goals)
    end = paths[0, :, -1]
    assert (dest[0] == np.linalg.norm(end[:, None] - goals, axis=-1).argmin(-1)).all()


def test_option_map_has_one_panel_per_task_and_none_for_a_policy_without_options(tmp_path, monkeypatch):
    from msol.common import option_map
    from msol.soft_options import figures

    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=["env=taxi", "env.hparams.hidden=[16]", "env.hparams.encoder_output_size=16"])
    env = make_env(cfg, ["R-G", "B-Y", "R-G"], mode="train", envs_per_slot=1, seed=0)
    assert option_map.task_slots(list(env.slot_tasks)) == {"R-G": 0, "B-Y": 1}
    titles: list[str] = []
    monkeypatch.setattr(figures.plt.Axes, "set_title", lambda ax, text, **kw: titles.append(text))
    assert plot_options(_make_policy(cfg, env, 3), env, tmp_path / "options.png") is not None
    assert titles == ["R-G", "B-Y"]  # one panel per task, not per slot
    assert set(env.grid_locations()) == {"R", "G", "B", "Y"}
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        flat = compose("train", overrides=["env=taxi", "algo=distral", "env.hparams.hidden=[16]",
                                           "env.hparams.encoder_output_size=16"])
    assert plot_options(_make_policy(flat, env, 3), env, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_moving_bandits_posterior_paths_follow_the_slots_own_options(tmp_path):
    torch.manual_seed(0)
    policy = HierarchicalPolicy(6, 5, continuous=False, num_slots=2, num_options=2, hidden=[8],
                                encoder_output_size=8)
    with torch.no_grad():  # the priors go east; slot 1's posteriors go north
        policy.prior_intra.weight.zero_()
        policy.prior_intra.bias.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0]))
        policy.intra.weight.zero_()
        policy.intra.bias[:, 1] = torch.tensor([0.0, 0.0, 0.0, 5.0, 0.0])
    prior, _ = moving_bandits_option_paths(policy, layouts=2, steps=3)
    posterior, _ = moving_bandits_option_paths(policy, layouts=2, steps=3, slot=1)
    assert np.allclose(prior[:, :, -1], [260.0, 200.0]) and np.allclose(posterior[:, :, -1], [200.0, 260.0])
