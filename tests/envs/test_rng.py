"""Counter-based draws: deterministic per (seed, episode, draw), independent of the rest of the batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msol.envs._rng import CounterRNG, normalize_seeds


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**63 - 1), episodes=st.integers(1, 5))
def test_draws_depend_only_on_seed_episode_and_draw(seed, episodes):
    alone, batch = CounterRNG(1), CounterRNG(4)
    ids = np.arange(4)
    seeds = np.array([seed, 1, 2, 3])
    first_alone = alone.begin_episode(np.array([0]), 3, np.array([seed]))
    first_batch = batch.begin_episode(ids, 3, seeds)
    np.testing.assert_array_equal(first_alone[0], first_batch[0])
    for _ in range(episodes):  # other envs resetting in between changes nothing for env 0
        batch.begin_episode(np.array([2, 3]), 3)
        a = alone.begin_episode(np.array([0]), 5)
        b = batch.begin_episode(np.array([0, 1]), 3)
        np.testing.assert_array_equal(a[0, :3], b[0])  # draw k is the same whatever num_draws is
        assert ((a >= 0) & (a < 1)).all()


def test_draws_look_uniform_and_distinct():
    rng = CounterRNG(50_000)
    u = rng.begin_episode(np.arange(50_000), 4, np.arange(50_000))  # consecutive seeds: the hard case
    assert np.abs(u.mean(axis=0) - 0.5).max() < 0.01
    assert np.abs(np.corrcoef(u.T) - np.eye(4)).max() < 0.02
    counts = np.histogram(u[:, 0], bins=20, range=(0, 1))[0]
    assert np.abs(counts - 2500).max() < 5 * 50
    second = rng.begin_episode(np.arange(50_000), 4)
    assert abs(np.corrcoef(u[:, 0], second[:, 0])[0, 1]) < 0.02


def test_unseeded_envs_get_entropy():
    a, b = CounterRNG(2), CounterRNG(2)
    assert not np.array_equal(a.begin_episode(np.arange(2), 2), b.begin_episode(np.arange(2), 2))


def test_normalize_seeds():
    np.testing.assert_array_equal(normalize_seeds(3, 3), [3, 4, 5])
    np.testing.assert_array_equal(normalize_seeds([1, None], 2), [1, -1])
    assert normalize_seeds(None, 2) is None
    with pytest.raises(ValueError, match="2 seeds for 3 envs"):
        normalize_seeds([1, 2], 3)
    with pytest.raises(ValueError, match="seed=-1"):
        normalize_seeds([-1], 1)
