"""MSOL's reward and loss terms against values computed by hand on tiny tensors."""

import math

import pytest
import torch

from msol.common.returns import gae_advantages, nstep_returns
from msol.soft_options.losses import RolloutTerms, msol_a2c_loss, msol_ppo_loss, regularized_reward
from msol.soft_options.storage import Rollout


def _ev(**overrides):
    base = {
        "logq_L": torch.tensor([-0.5, -1.0]), "logp_L": torch.tensor([-0.7, -0.2]), "ent_L": torch.tensor([1.0, 0.5]),
        "logq_H": torch.tensor([-0.3, -2.0]), "ent_H": torch.tensor([0.6, 0.9]),
        "logq_T": torch.tensor([-0.1, -0.4]), "ent_T": torch.tensor([0.2, 0.3]),
        "logp_T": torch.tensor([-3.0, -0.05]), "logp_T_hat": torch.tensor([-1.5, -0.25]),
        "value": torch.tensor([0.4, -0.2], requires_grad=True),
    }
    base.update(overrides)
    return RolloutTerms(**base)


def _batch(b, first):
    rollout = Rollout.allocate(1, 2, 3, (), continuous=False, device=torch.device("cpu")).flat()
    rollout.b = torch.tensor(b, dtype=torch.float32)
    rollout.first = torch.tensor(first, dtype=torch.float32)
    return rollout


def test_regularized_reward_matches_hand_computation_and_masks_first_step():
    ev = _ev()
    r = torch.tensor([1.0, -0.1])
    R = regularized_reward(r, ev, torch.tensor([0.0, 1.0]), beta=0.5)
    # row 0: 1 - 0.5*(-0.5+0.7) - 0.5*(-0.1+3.0) = 1 - 0.1 - 1.45
    # row 1 (first step): -0.1 - 0.5*(-1.0+0.2) - 0 = -0.1 + 0.4
    assert R.tolist() == pytest.approx([1 - 0.1 - 1.45, -0.1 + 0.4])
    assert not R.requires_grad


def test_nstep_returns_cut_at_termination_and_bootstrap_through_truncation():
    gamma = 0.9
    R = torch.tensor([[1.0], [2.0], [3.0]])
    term = torch.tensor([[0.0], [1.0], [0.0]])
    trunc = torch.zeros(3, 1)
    G = nstep_returns(R, term, trunc, torch.zeros(3, 1), torch.tensor([10.0]), gamma)
    assert G[:, 0].tolist() == pytest.approx([1 + 0.9 * 2, 2.0, 3 + 0.9 * 10])
    trunc = torch.tensor([[0.0], [1.0], [0.0]])
    boot = torch.tensor([[0.0], [5.0], [0.0]])
    G = nstep_returns(R, torch.zeros(3, 1), trunc, boot, torch.tensor([10.0]), gamma)
    # step 1 is a time-limit cut: bootstrap from V(final_obs) = 5, not from the next episode's return.
    assert G[:, 0].tolist() == pytest.approx([1 + 0.9 * (2 + 0.9 * 5), 2 + 0.9 * 5, 3 + 0.9 * 10])


def test_a2c_loss_terms_match_hand_computation():
    ev = _ev()
    batch = _batch(b=[1.0, 0.0], first=[0.0, 1.0])
    returns = torch.tensor([1.0, 0.3])
    loss, stats = msol_a2c_loss(ev, batch, returns, entropy_coef=0.1)
    A = [1.0 - 0.4, 0.3 + 0.2]
    L_V = [a * a for a in A]  # L_V = A², weighed by λ_V = ½ (authors' value_loss_coef · mean(A²))
    # row 0: b=1, not first -> q^L + q^H + q^T;  row 1: b=0, first -> q^L only
    L_A = [-A[0] * (-0.5 - 0.3 - 0.1), -A[1] * (-1.0)]
    # the entropy of q^T is masked at first steps like every other termination term
    L_H = [-0.1 * (1.0 + 0.6 + 0.2), -0.1 * (0.5 + 0.0 + 0.0)]
    L_P = [0.7 + 1.5, 0.2]  # -ln p^L - (1-first) ln p^T_θ(b̂)
    expected = sum(0.5 * v + a + p + h for v, a, p, h in zip(L_V, L_A, L_P, L_H)) / 2  # a plain mean over rows
    assert loss.item() == pytest.approx(expected)
    assert stats["loss/prior"] == pytest.approx(sum(L_P) / 2)
    assert stats["loss/entropy"] == pytest.approx(sum(L_H) / 2)
    loss.backward()
    # dL/dV = mean(-2 λ_V A) = -A / rows: the value gradient is A·∇V per row, averaged
    assert ev.value.grad.tolist() == pytest.approx([-A[0] / 2, -A[1] / 2])


def test_prior_distillation_off_after_transfer():
    ev = _ev()
    loss_on, _ = msol_a2c_loss(ev, _batch([1.0, 0.0], [0.0, 0.0]), torch.zeros(2), entropy_coef=0.0)
    loss_off, stats = msol_a2c_loss(ev, _batch([1.0, 0.0], [0.0, 0.0]), torch.zeros(2), entropy_coef=0.0,
                                    distill_priors=False)
    assert stats["loss/prior"] == 0.0
    assert loss_on.item() - loss_off.item() == pytest.approx((0.7 + 1.5 + 0.2 + 0.25) / 2)
    assert math.isfinite(loss_off.item())


def test_ppo_loss_terms_match_hand_computation():
    ev = _ev()
    batch = _batch(b=[1.0, 0.0], first=[0.0, 1.0])
    # joint log-probabilities of the new policy: row 0: -0.5 - 0.3 - 0.1 = -0.9; row 1 (first step, no master
    # decision): -1.0. Old ones chosen so that ratio 0 = e^0.5 (clipped at 1.2) and ratio 1 = e^-0.1.
    batch.old_logp = torch.tensor([-1.4, -0.9])
    batch.old_value = torch.tensor([0.0, -0.5])
    advantages, returns = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.3])
    loss, stats = msol_ppo_loss(ev, batch, advantages, returns, entropy_coef=0.0, clip=0.2, value_coef=1.0,
                                prior_coef=0.0)
    r0, r1 = math.exp(0.5), math.exp(-0.1)
    L_A = [-min(r0 * 2.0, 1.2 * 2.0), -min(r1 * -1.0, r1 * -1.0)]  # r1 = 0.905 is inside [0.8, 1.2]
    # values 0.4, -0.2; clipped values: 0.0 + clamp(0.4, ±0.2) = 0.2, -0.5 + clamp(0.3, ±0.2) = -0.3
    L_V = [0.5 * max((0.4 - 1.0) ** 2, (0.2 - 1.0) ** 2), 0.5 * max((-0.2 - 0.3) ** 2, (-0.3 - 0.3) ** 2)]
    assert stats["loss/policy"].item() == pytest.approx(sum(L_A) / 2)
    assert stats["loss/value"].item() == pytest.approx(sum(L_V) / 2)
    assert stats["ppo/clip_frac"].item() == pytest.approx(0.5)  # row 0's ratio is outside [0.8, 1.2]
    assert loss.item() == pytest.approx((sum(L_A) + sum(L_V)) / 2)
    loss.backward()
    # value gradient (loss = mean of 2 rows): row 0 takes the clipped branch (its value is clamped: no gradient);
    # row 1 also the clipped one, clamped too → both 0
    assert ev.value.grad.tolist() == pytest.approx([0.0, 0.0])


def test_gae_matches_hand_computation_at_terminations_and_truncations():
    R, values = torch.tensor([[1.0], [2.0], [3.0]]), torch.full((3, 1), 0.5)
    zeros, last = torch.zeros(3, 1), torch.tensor([1.0])
    # no end: δ2 = 3 + .5·1 − .5 = 3; δ1 = 2 + .25 − .5 = 1.75, A1 = 1.75 + .25·3; δ0 = .75, A0 = .75 + .25·A1
    adv = gae_advantages(R, values, zeros, zeros, zeros, last, gamma=0.5, lam=0.5)
    assert adv[:, 0].tolist() == pytest.approx([0.75 + 0.25 * 2.5, 2.5, 3.0])
    # termination at t = 1: nothing flows back into step 1 from step 2
    term = torch.tensor([[0.0], [1.0], [0.0]])
    adv = gae_advantages(R, values, term, zeros, zeros, last, gamma=0.5, lam=0.5)
    assert adv[:, 0].tolist() == pytest.approx([0.75 + 0.25 * 1.5, 1.5, 3.0])
    # truncation at t = 1 with V(final obs) = 2: step 1 bootstraps from 2 and no advantage flows back from step 2
    trunc, boot = torch.tensor([[0.0], [1.0], [0.0]]), torch.tensor([[0.0], [2.0], [0.0]])
    adv = gae_advantages(R, values, zeros, trunc, boot, last, gamma=0.5, lam=0.5)
    assert adv[:, 0].tolist() == pytest.approx([0.75 + 0.25 * 2.5, 2.0 + 0.5 * 2.0 - 0.5, 3.0])


def test_gae_with_lambda_one_is_the_nstep_return_minus_the_value():
    gen = torch.Generator().manual_seed(0)
    R, values = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    term = (torch.rand(6, 4, generator=gen) < 0.2).float()
    trunc = (torch.rand(6, 4, generator=gen) < 0.2).float() * (1 - term)
    boot, last = torch.randn(6, 4, generator=gen), torch.randn(4, generator=gen)
    adv = gae_advantages(R, values, term, trunc, boot, last, gamma=0.9, lam=1.0)
    torch.testing.assert_close(adv + values, nstep_returns(R, term, trunc, boot, last, 0.9))
