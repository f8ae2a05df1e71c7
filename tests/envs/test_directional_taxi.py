"""Directional Taxi against the spec: headings, true 90° rotations, forward moves, observation, starts."""

from __future__ import annotations

import numpy as np
import pytest

from msol.envs.directional_taxi import DirectionalTaxiCore, DirectionalTaxiEnv
from msol.envs.taxi import TAXI_MAPS

HEADING_VECTORS = {0: (0, -1), 1: (1, 0), 2: (0, 1), 3: (-1, 0)}  # N, E, S, W
FORWARD, CLOCKWISE, COUNTER_CLOCKWISE, PICK = 1, 2, 3, 4


def place(env: DirectionalTaxiEnv, x: int, y: int, heading: int, passenger: int = 0) -> None:
    core = env.core
    core.state[0] = core.encode(heading, passenger, core.map.cell(x, y))


def position(env: DirectionalTaxiEnv) -> tuple[int, int, int, int]:
    heading, passenger, cell = (int(v) for v in env.core.decode(env.core.state[0]))
    x, y = env.core.map.xy(cell)
    return int(x), int(y), heading, passenger


@pytest.fixture
def env():
    e = DirectionalTaxiEnv(task="R-G", mode="test")
    e.reset(seed=0)
    return e


def test_rotations_are_true_quarter_turns(env):
    place(env, 3, 3, 0)
    seen = []
    for _ in range(4):
        env.step(CLOCKWISE)
        seen.append(position(env)[2])
    assert seen == [1, 2, 3, 0]  # N -> E -> S -> W -> N
    env.step(CLOCKWISE)
    env.step(COUNTER_CLOCKWISE)
    assert position(env) == (3, 3, 0, 0)


@pytest.mark.parametrize("heading", range(4))
def test_forward_moves_along_heading(env, heading):
    place(env, 5, 3, heading)  # all four neighbours are free
    env.step(FORWARD)
    dx, dy = HEADING_VECTORS[heading]
    assert position(env) == (5 + dx, 3 + dy, heading, 0)


def test_forward_into_wall_stays_and_noop_does_nothing(env):
    place(env, 2, 1, 1)  # facing east into the wall at (3, 1)
    _, r, term, trunc, _ = env.step(FORWARD)
    assert position(env) == (2, 1, 1, 0) and r == pytest.approx(-0.1) and not term and not trunc
    env.step(0)
    assert position(env) == (2, 1, 1, 0)


def test_pickup_and_delivery(env):
    place(env, 1, 1, 2)
    env.step(PICK)
    assert position(env)[3] == 1
    place(env, 6, 1, 3, passenger=1)
    _, r, term, _, _ = env.step(PICK)
    assert r == pytest.approx(2.0) and term


def test_observation_encoding(env):
    place(env, 4, 2, 3, passenger=1)
    obs, *_ = env.step(0)
    expected = np.zeros(288, dtype=np.float32)
    expected[(3 * 2 + 1) * 36 + (2 - 1) * 6 + (4 - 1)] = 1.0
    np.testing.assert_array_equal(obs, expected)


def test_start_headings_uniform_and_cells_are_start_cells():
    n = 8000
    core = DirectionalTaxiCore(n, task="R-G", mode="test")
    core.reset(seed=1)
    heading, passenger, cell = core.decode(core.state)
    assert np.all(np.abs(np.bincount(heading, minlength=4) - n / 4) < 5 * np.sqrt(n / 4))
    assert set(np.unique(cell)) == set(TAXI_MAPS["8x8"].start_cells)
    assert passenger.max() == 0


def test_truncation_and_bad_action(env):
    for t in range(1, 51):
        _, _, term, trunc, _ = env.step(CLOCKWISE)
        assert not term and trunc == (t == 50)
    env.reset()
    with pytest.raises(ValueError, match="valid actions"):
        env.step(5)
