"""The option-collapse diagnostics logged with every row."""

import torch

from msol.soft_options.diagnostics import option_layer_stats
from msol.soft_options.networks import HierarchicalPolicy


def _policy():
    torch.manual_seed(0)
    return HierarchicalPolicy(5, 4, continuous=False, num_slots=2, num_options=2, hidden=[16],
                              encoder_output_size=32, option_embedding=8)


def test_option_gap_is_zero_when_options_share_their_features_and_positive_otherwise():
    policy = _policy()
    obs, slot = torch.randn(40, 5), torch.tensor([0, 1] * 20)
    stats = option_layer_stats(policy, obs, slot, ["goal0", "goal1"])
    assert stats["features/option_gap"] > 0.01 and 0 < stats["features/alive_units"] <= 1
    with torch.no_grad():
        policy.encoder.option_embed.weight.zero_()  # every option: the same embedding
    assert option_layer_stats(policy, obs, slot, ["goal0", "goal1"])["features/option_gap"] == 0.0


def test_dead_units_and_master_task_spread():
    policy = _policy()
    obs, slot = torch.randn(40, 5), torch.tensor([0, 1] * 20)
    with torch.no_grad():
        policy.encoder.option_layer.bias[:, :24] = -1e3  # 24 of 32 units can never fire
        policy.master.weight.zero_()
        policy.master.bias[:, 0] = torch.tensor([5.0, -5.0])  # slot 0 (goal0) picks option 0, slot 1 option 1
        policy.master.bias[:, 1] = torch.tensor([-5.0, 5.0])
    stats = option_layer_stats(policy, obs, slot, ["goal0", "goal1"])
    assert stats["features/alive_units"] <= 8 / 32
    assert stats["master/task_spread"] > 0.99
    stats = option_layer_stats(policy, obs, slot, ["goal0", "goal0"])  # one task: no spread
    assert stats["master/task_spread"] == 0.0
