"""The hierarchical policy's structure: batched slot heads, conditioning, b̂, transfer."""

import torch

from msol.common.layers import MemberLinear, SlotLinear
from msol.soft_options.acting import act
from msol.soft_options.losses import rollout_terms
from msol.soft_options.networks import HierarchicalPolicy
from msol.soft_options.storage import Rollout
from msol.soft_options.trainer import _transfer_policy


def _policy(continuous=False, slots=3):
    torch.manual_seed(0)
    return HierarchicalPolicy(5, 4, continuous=continuous, num_slots=slots, num_options=3, hidden=[16],
                              encoder_output_size=8, option_embedding=4)


ALGO = {"num_options": 3, "hidden": [16], "encoder_output_size": 8, "option_embedding": 4, "master_input": "option0",
        "use_terminations": True, "fresh_master_encoder": True, "primitive_options": False,
        "observe_prev_action": False}


def test_slot_linear_equals_a_loop_over_members_and_slots():
    layer = SlotLinear(4, 6, 3, generators=[torch.Generator().manual_seed(k) for k in range(2)])
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(10, 6)  # rows 0-4: member 0, rows 5-9: member 1
    slot = torch.randint(4, (10,))
    expected = torch.stack([x[i] @ layer.slot_weight(int(slot[i]), i // 5) + layer.bias[i // 5, slot[i]]
                            for i in range(10)])
    assert torch.allclose(layer(x, slot), expected, atol=1e-6)


def test_grouped_slot_linear_equals_the_forward_of_rows_laid_out_slot_by_slot():
    layer = SlotLinear(4, 6, 3, generators=[torch.Generator().manual_seed(k) for k in range(2)])
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(2, 4, 5, 6)  # member, slot, row
    slot = torch.arange(4).repeat_interleave(5).repeat(2)
    assert torch.allclose(layer.grouped(x).flatten(0, 2), layer(x.flatten(0, 2), slot), atol=1e-6)


def test_member_linear_applies_each_members_own_weights():
    layer = MemberLinear(6, 3, 1.0, [torch.Generator().manual_seed(k) for k in range(3)])
    x = torch.randn(12, 6)
    expected = torch.cat([torch.nn.functional.linear(x[4 * k:4 * k + 4], layer.weight[k], layer.bias[k])
                          for k in range(3)])
    assert torch.allclose(layer(x), expected, atol=1e-6)


def test_a_member_is_initialised_and_acts_like_a_single_policy_of_its_seed():
    def policy(seeds):
        return HierarchicalPolicy(5, 4, continuous=True, num_slots=2, num_options=3, hidden=[16],
                                  encoder_output_size=8, option_embedding=4,
                                  generators=[torch.Generator().manual_seed(s) for s in seeds])

    single, population = policy([7]), policy([3, 7])
    member = population.member(1).state_dict()
    assert all(torch.equal(v, member[k]) for k, v in single.state_dict().items())
    obs, slot = torch.randn(8, 5), torch.tensor([0, 1, 0, 1])
    z, first = torch.zeros(8, dtype=torch.long), torch.ones(8)
    alone = act(single, obs[4:], z[4:], first[4:], slot, generators=[torch.Generator().manual_seed(1)])
    together = act(population, obs, z, first, slot.repeat(2),
                   generators=[torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    assert torch.allclose(alone.action, together.action[4:], atol=1e-6)
    assert torch.allclose(alone.logp, together.logp[4:], atol=1e-5)
    fresh = policy([0, 0])
    fresh.load_member(0, single.state_dict())
    assert torch.equal(fresh.member(0).encoder.trunk[0].weight, single.encoder.trunk[0].weight)


def _batch(policy, z_prev, z):
    rows = len(z)
    b = Rollout.allocate(1, rows, 5, (), continuous=False, device=torch.device("cpu")).flat()
    b.obs = torch.randn(1, 5).expand(rows, 5).clone()
    b.z_prev, b.z = torch.tensor(z_prev), torch.tensor(z)
    b.action = torch.zeros(rows, dtype=torch.long)
    return b


def test_value_conditions_on_previous_option_not_current():
    policy = _policy()
    slot = torch.zeros(3, dtype=torch.long)
    ev = rollout_terms(policy, _batch(policy, [0, 1, 0], [2, 2, 1]), slot, fixed_termination_prior=0.05)
    assert ev.value[0] != ev.value[1]                      # different z_{t-1}
    assert torch.isclose(ev.value[0], ev.value[2])          # same z_{t-1}, different z_t


def test_z_hat_is_fresh_master_sample_even_when_option_continues():
    policy = _policy()
    with torch.no_grad():
        policy.master.bias.zero_()
        policy.master.weight.zero_()
        policy.master.bias[..., 2] = 50.0     # master always picks option 2
        policy.termination.weight.zero_()
        policy.termination.bias[:] = torch.tensor([50.0, -50.0])  # never terminate
    obs = torch.randn(4, 5)
    z_prev = torch.tensor([0, 1, 2, 0])
    first = torch.tensor([0.0, 0.0, 0.0, 1.0])
    step = act(policy, obs, z_prev, first, torch.zeros(4, dtype=torch.long))
    assert step.b.tolist() == [0, 0, 0, 1]            # forced termination on the first step only
    assert step.z.tolist() == [0, 1, 2, 2]            # options continue unless terminated
    assert step.z_hat_switch.tolist() == [1, 1, 0, 1]  # b̂ = 1[ẑ != z_{t-1}] with ẑ = 2


def test_transfer_starts_posteriors_at_priors_and_freezes_priors():
    source = _policy(slots=3)

    class FakeEnv:
        obs_dim, action_dim, continuous = 5, 4, False

    from omegaconf import OmegaConf
    cfg = OmegaConf.create({"algo": {**ALGO, "frozen": False}})
    policy = _transfer_policy(cfg, source, FakeEnv(), num_slots=2)
    obs = torch.randn(6, 5)
    slot = torch.tensor([0, 1, 0, 1, 0, 1])
    z = torch.randint(3, (6,))
    f, fp = policy.option_features(policy.trunk(obs), z)
    q_L, p_L = policy.action_dists(f, fp, slot, z)
    assert torch.allclose(q_L.logits, p_L.logits, atol=1e-6)
    q_T, p_T = policy.termination_logits(f, fp, slot)
    assert torch.allclose(q_T, p_T, atol=1e-6)
    # the priors equal the source's learned priors, and receive no gradient
    fs, _ = source.option_features(source.trunk(obs), z)
    assert torch.allclose(source.prior_intra(fs).log_softmax(-1), p_L.logits, atol=1e-6)
    frozen = [p for n, p in policy.named_parameters() if n.startswith(("prior_", "prior_encoder"))]
    assert frozen and not any(p.requires_grad for p in frozen)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert {"intra.weight", "termination.weight", "master.weight", "value.weight"} <= trainable


def test_frozen_transfer_keeps_posteriors_equal_to_priors():
    source = _policy(slots=2)

    class FakeEnv:
        obs_dim, action_dim, continuous = 5, 4, False

    from omegaconf import OmegaConf
    cfg = OmegaConf.create({"algo": {**ALGO, "frozen": True}})
    policy = _transfer_policy(cfg, source, FakeEnv(), num_slots=2)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("intra", "termination", "prior")) for n in trainable)
    assert {"master.weight", "value.weight"} <= trainable


def test_continuous_policy_gives_gaussian_actions():
    policy = _policy(continuous=True)
    obs = torch.randn(6, 5)
    step = act(policy, obs, torch.zeros(6, dtype=torch.long), torch.ones(6), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert step.action.shape == (6, 4) and step.action.dtype == torch.float32
    assert torch.isfinite(step.logp).all()


def test_option_table_equals_concatenated_embedding_layer():
    """f(h, z) = ReLU(W [h, Embed(onehot z)]): the precomputed per-option table must give exactly that."""
    policy = _policy()
    enc = policy.encoder
    with torch.no_grad():
        enc.option_embed.bias.normal_()  # a non-zero bias: primitives (no one-hot) then differ from zero input
    obs = torch.randn(8, 5)
    z = torch.tensor([0, 1, 2, 0, 1, 2, 3, 5])  # 3 and 5: primitive actions beyond the 3 options
    h = enc.features(obs)
    onehot = torch.nn.functional.one_hot(z, 6)[:, :3].float()
    expected = torch.relu(enc.option_layer(torch.cat([h, enc.option_embed(onehot)], dim=-1)))
    f, fp = policy.option_features(policy.trunk(obs), z)
    assert torch.allclose(f, expected, atol=1e-5) and fp is f
    f.sum().backward()  # gradients reach both parts of the option layer and the embedding
    assert enc.option_layer.weight.grad.abs().sum() > 0 and enc.option_embed.weight.grad.abs().sum() > 0


def test_primitive_options_act_once_then_terminate():
    torch.manual_seed(0)
    policy = HierarchicalPolicy(5, 4, continuous=False, num_slots=1, num_options=3, hidden=[16],
                                encoder_output_size=8, option_embedding=4, num_primitives=4)
    with torch.no_grad():
        policy.master.weight.zero_()
        policy.master.bias.zero_()
        policy.master.bias[..., 0, 3 + 2] = 50.0  # always pick primitive action 2
    obs = torch.randn(6, 5)
    slot = torch.zeros(6, dtype=torch.long)
    step = act(policy, obs, torch.zeros(6, dtype=torch.long), torch.ones(6), slot)
    assert step.z.tolist() == [5] * 6 and step.action.tolist() == [2] * 6
    assert torch.allclose(step.logp, torch.zeros(6), atol=1e-4)  # master sure, primitive deterministic
    # after a primitive, the termination is forced
    step2 = act(policy, obs, step.z, torch.zeros(6), slot)
    assert step2.b.tolist() == [1] * 6


def test_initialisation_is_orthogonal_with_uniform_policies_and_zero_biases():
    policy = _policy(slots=2)
    enc = policy.encoder
    for layer in (enc.trunk[0], enc.option_layer, enc.option_embed, policy.prior_intra):
        assert torch.count_nonzero(layer.bias) == 0
    w = enc.trunk[0].weight[0]  # [16, 5]: orthonormal columns scaled by √2
    assert torch.allclose(w.t() @ w, 2.0 * torch.eye(5), atol=1e-5)
    assert torch.allclose(policy.value.slot_weight(1).t() @ policy.value.slot_weight(1), torch.eye(1), atol=1e-5)
    obs = torch.rand(64, 5)  # observations of our envs lie in about [0, 1]
    slot = torch.randint(2, (64,))
    z = torch.randint(3, (64,))
    with torch.no_grad():
        trunk = policy.trunk(obs)
        f, fp = policy.option_features(trunk, z)
        q_L, p_L = policy.action_dists(f, fp, slot, z)
        q_T, p_T = policy.termination_logits(f, fp, slot)
        q_H = policy.master_logits(trunk, slot).softmax(-1)
    for probs in (q_L.probs, p_L.probs, q_T.softmax(-1), p_T.softmax(-1), q_H):
        uniform = torch.full_like(probs, 1.0 / probs.shape[-1])
        assert torch.allclose(probs, uniform, atol=0.02)  # gain 0.01: every policy starts (almost) uniform
    values = policy.value_of(trunk, z, slot)
    assert values.std() > 0.1  # gain 1: the value head is not squashed


def test_master_reads_option_zero_features_or_the_trunk():
    policy = _policy()
    obs, slot = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    trunk = policy.trunk(obs)
    f0, _ = policy.option_features(trunk, torch.zeros(6, dtype=torch.long))
    assert torch.allclose(policy.master_logits(trunk, slot), policy.master(f0, slot))
    torch.manual_seed(0)
    on_trunk = HierarchicalPolicy(5, 4, continuous=False, num_slots=3, num_options=3, hidden=[16],
                                  encoder_output_size=8, option_embedding=4, master_input="trunk")
    trunk = on_trunk.trunk(obs)
    assert on_trunk.master.in_features == 16
    assert torch.allclose(on_trunk.master_logits(trunk, slot), on_trunk.master(trunk.h, slot))


def test_at_transfer_master_and_value_read_a_fresh_encoder():
    from omegaconf import OmegaConf

    source = _policy(slots=2)

    class FakeEnv:
        obs_dim, action_dim, continuous = 5, 4, False

    policy = _transfer_policy(OmegaConf.create({"algo": {**ALGO, "frozen": False}}), source, FakeEnv(), num_slots=2)
    control = policy.control_encoder
    assert control is not None
    assert not torch.allclose(control.trunk[0].weight, policy.encoder.trunk[0].weight)  # fresh, not a copy
    obs, slot, z = torch.randn(6, 5), torch.tensor([0, 1, 0, 1, 0, 1]), torch.randint(3, (6,))
    trunk = policy.trunk(obs)
    (policy.master_logits(trunk, slot).sum() + policy.value_of(trunk, z, slot).sum()).backward()
    assert control.trunk[0].weight.grad.abs().sum() > 0
    assert policy.encoder.trunk[0].weight.grad is None  # the options' encoder gets nothing from master and value
    kept = _transfer_policy(OmegaConf.create({"algo": {**ALGO, "frozen": False, "fresh_master_encoder": False}}),
                            source, FakeEnv(), num_slots=2)
    assert kept.control_encoder is None


def test_greedy_master_takes_the_argmax():
    policy = _policy()
    with torch.no_grad():
        policy.master.bias[..., 1] = 1.0  # p(z=1) ≈ 0.58: a sampled master often picks another option
    obs, first = torch.randn(200, 5), torch.ones(200)
    slot, z_prev = torch.zeros(200, dtype=torch.long), torch.zeros(200, dtype=torch.long)
    assert (act(policy, obs, z_prev, first, slot, greedy_master=True).z == 1).all()
    assert (act(policy, obs, z_prev, first, slot).z != 1).any()
