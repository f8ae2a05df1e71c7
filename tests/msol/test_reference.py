"""msol/reference.py computes what the package computes: same loss, same gradients on the same batch."""

from __future__ import annotations

import pytest
import torch

from msol.common.layers import MemberLinear, SlotLinear
from msol.common.returns import nstep_returns
from msol.reference import Args, Batch, MSOLAgent, a2c_loss
from msol.soft_options.losses import msol_a2c_loss, regularized_reward, rollout_terms
from msol.soft_options.networks import HierarchicalPolicy
from msol.soft_options.storage import Rollout

ARGS = Args(num_options=3, num_slots=4, envs_per_slot=2, hidden=(16, 12), option_embedding=8,
            encoder_output_size=10, n_steps=6, gamma=0.9, alpha=0.9, beta=0.3, entropy_coef=0.07)
OBS_DIM, ACTIONS = 5, 4


def _pairs(policy: HierarchicalPolicy, agent: MSOLAgent) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """(package parameter view, reference parameter, how) for every parameter of the reference."""
    pairs = []
    package_trunk = [m for m in policy.encoder.trunk if isinstance(m, MemberLinear)]
    reference_trunk = [m for m in agent.trunk if isinstance(m, torch.nn.Linear)]
    shared = [*zip(package_trunk, reference_trunk), (policy.encoder.option_embed, agent.option_embed),
              (policy.encoder.option_layer, agent.option_layer), (policy.prior_intra, agent.prior_intra),
              (policy.prior_termination, agent.prior_termination)]
    for theirs, ours in shared:
        pairs += [(theirs.weight, ours.weight, "member"), (theirs.bias, ours.bias, "member")]
    for name in ("master", "termination", "value", "intra"):
        head: SlotLinear = getattr(policy, name)
        for slot, ours in enumerate(getattr(agent, name)):
            pairs += [(head.weight, ours.weight, f"slot_weight:{slot}"), (head.bias, ours.bias, f"slot_bias:{slot}")]
    assert len(pairs) == len(list(agent.parameters()))
    return pairs


def _view(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """The package's tensor laid out like the reference's parameter."""
    if how == "member":
        return tensor[0]
    kind, slot = how.split(":")
    return tensor[0, :, int(slot)].t() if kind == "slot_weight" else tensor[0, int(slot)]


def _batch(T: int, B: int, generator: torch.Generator) -> Batch:
    first = (torch.rand(T, B, generator=generator) < 0.2).double()
    b = torch.where(first > 0, 1.0, (torch.rand(T, B, generator=generator) < 0.4).double())
    z_prev = torch.randint(ARGS.num_options, (T, B), generator=generator)
    z = torch.where(b > 0, torch.randint(ARGS.num_options, (T, B), generator=generator), z_prev)
    end = torch.rand(T, B, generator=generator)
    truncated = (end < 0.1).double()
    return Batch(obs=torch.randn(T, B, OBS_DIM, generator=generator), z_prev=z_prev, z=z, b=b,
                 action=torch.randint(ACTIONS, (T, B), generator=generator), first=first,
                 z_hat_switch=torch.randint(2, (T, B), generator=generator),
                 reward=torch.randn(T, B, generator=generator), terminated=((end > 0.1) & (end < 0.2)).double(),
                 truncated=truncated, bootstrap=truncated * torch.randn(T, B, generator=generator))


def test_one_update_gives_the_packages_loss_and_gradients(float64):
    generator = torch.Generator().manual_seed(0)
    policy = HierarchicalPolicy(OBS_DIM, ACTIONS, continuous=False, num_slots=ARGS.num_slots,
                                num_options=ARGS.num_options, hidden=list(ARGS.hidden),
                                encoder_output_size=ARGS.encoder_output_size, option_embedding=ARGS.option_embedding,
                                generators=[torch.Generator().manual_seed(1)])
    with torch.no_grad():  # non-zero biases and larger heads, so every term matters
        for param in policy.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator))
    agent = MSOLAgent(OBS_DIM, ACTIONS, ARGS)
    pairs = _pairs(policy, agent)
    with torch.no_grad():
        for theirs, ours, how in pairs:
            ours.copy_(_view(theirs, how))

    T, B = ARGS.n_steps, ARGS.num_slots * ARGS.envs_per_slot
    batch = _batch(T, B, generator)
    slot = torch.arange(ARGS.num_slots).repeat_interleave(ARGS.envs_per_slot)
    last_value = torch.randn(B, generator=generator)

    loss = a2c_loss(agent, batch, slot, last_value, ARGS, ARGS.beta, ARGS.entropy_coef)
    loss.backward()

    flat = Rollout(**{k: v.reshape(T * B, *v.shape[2:]) for k, v in vars(batch).items()},
                   old_logp=torch.zeros(T * B), old_value=torch.zeros(T * B))
    ev = rollout_terms(policy, flat, slot.repeat(T), fixed_termination_prior=1.0 - ARGS.alpha)
    R = regularized_reward(flat.reward, ev, flat.first, ARGS.beta).view(T, B)
    returns = nstep_returns(R, batch.terminated, batch.truncated, batch.bootstrap, last_value, ARGS.gamma)
    package_loss, _ = msol_a2c_loss(ev, flat, returns.reshape(-1), entropy_coef=ARGS.entropy_coef,
                                    value_coef=ARGS.value_coef, policy_coef=ARGS.policy_coef,
                                    prior_coef=ARGS.prior_coef)
    package_loss.backward()

    assert loss.item() == pytest.approx(package_loss.item(), rel=1e-6, abs=1e-6)
    for theirs, ours, how in pairs:
        assert ours.grad is not None and ours.grad.abs().sum() > 0, how
        assert torch.allclose(ours.grad, _view(theirs.grad, how), rtol=1e-6, atol=1e-6), how


def test_the_reference_runs_on_its_own(capsys):
    """``python -m msol.reference`` trains: option learning on Moving Bandits with slot resets, a line per interval."""
    from msol.reference import train

    logged = train(Args(num_slots=2, envs_per_slot=2, frames_per_task=1500, log_every=500,
                        slot_reset_frames_per_task=1000))
    assert len(logged) == 3 and all(0.0 <= r <= 50.0 for r in logged)  # Moving Bandits returns lie in [0, 50]
    assert capsys.readouterr().out.count("frames per task") == 3
