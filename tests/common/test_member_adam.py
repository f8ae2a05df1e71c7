"""MemberAdam: torch's Adam per member, with members that sit out a step left exactly as they were."""

from __future__ import annotations

import pytest
import torch

from msol.common.member_adam import MemberAdam
from msol.common.population import load_optimizer_members, optimizer_member_state


def _grads(steps: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(*shape, generator=generator, dtype=torch.float64) for _ in range(steps)]


def test_every_member_stepping_is_torchs_adam():
    start = torch.randn(3, 4, 5, dtype=torch.float64)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    mine, torch_adam = MemberAdam([ours], 0.01, members=3, eps=1e-8), torch.optim.Adam([theirs], 0.01, eps=1e-8)
    for grad in _grads(6, (3, 4, 5)):
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        mine.step()
        torch_adam.step()
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-12)


def test_a_member_that_sits_out_is_untouched_and_keeps_its_own_step_count():
    start = torch.randn(2, 4, dtype=torch.float64)
    together = torch.nn.Parameter(start.clone())
    alone = torch.nn.Parameter(start[:1].clone())  # member 0 as a single run
    pop, single = MemberAdam([together], 0.1, members=2), MemberAdam([alone], 0.1, members=1)
    active = [torch.tensor([True, True]), torch.tensor([True, False]), torch.tensor([False, True])]
    for grad, on in zip(_grads(3, (2, 4)), active, strict=True):
        before = together.detach().clone(), {k: v.clone() for k, v in pop.state[together].items()}
        together.grad = grad.clone()
        pop.step(on)
        for k in range(2):
            if not on[k]:
                assert torch.equal(together[k], before[0][k])
                assert all(torch.equal(pop.state[together][name][k], before[1][name][k])
                           for name in ("exp_avg", "exp_avg_sq", "step"))
        if on[0]:
            alone.grad = grad[:1].clone()
            single.step()
    assert pop.state[together]["step"].tolist() == [2.0, 2.0]
    assert torch.allclose(together[:1], alone, rtol=0, atol=1e-12)  # member 0 = its own optimiser


def test_member_state_round_trip():
    param = torch.nn.Parameter(torch.randn(3, 2))
    optimizer = MemberAdam([param], 0.1, members=3)
    param.grad = torch.randn(3, 2)
    optimizer.step(torch.tensor([True, False, True]))
    states = [optimizer_member_state(optimizer, k) for k in range(3)]
    assert [s["state"][0]["step"].tolist() for s in states] == [[1.0], [0.0], [1.0]]
    fresh = MemberAdam([torch.nn.Parameter(torch.zeros(3, 2))], 0.1, members=3)
    fresh.zero_grad()
    load_optimizer_members(fresh, states)
    for name, value in optimizer.state_dict()["state"][0].items():
        assert torch.equal(fresh.state_dict()["state"][0][name], value)


def test_a_parameter_without_the_member_dim_is_refused():
    with pytest.raises(ValueError, match="no member dim of size 2"):
        MemberAdam([torch.nn.Parameter(torch.zeros(3, 4))], 0.1, members=2)
