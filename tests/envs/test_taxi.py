"""Taxi against the spec (envs.md "Taxi"): map, walls, pick-up/drop-off, rewards, time limit, observation, starts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msol import envs
from msol.envs.taxi import TAXI_MAPS, TaxiCore, TaxiEnv, TaxiMap

SPEC_MAP = (
    "########",
    "#..#...#",
    "#..#...#",
    "#......#",
    "#......#",
    "#.#.#..#",
    "#.#.#..#",
    "########",
)
SPEC_LOCATIONS = {"R": (1, 1), "G": (6, 1), "Y": (1, 6), "B": (5, 6)}
MOVES = {1: (0, -1), 2: (0, 1), 3: (1, 0), 4: (-1, 0)}  # north, south, east, west


def reference_step(
    x: int, y: int, passenger: int, action: int, task: str
) -> tuple[int, int, int, float, bool]:
    """The spec's rules, written on coordinates (independent of the env's tables)."""
    pickup, dropoff = (SPEC_LOCATIONS[k] for k in task.split("-"))
    if action in MOVES:
        nx, ny = x + MOVES[action][0], y + MOVES[action][1]
        if SPEC_MAP[ny][nx] == ".":
            x, y = nx, ny
    elif action == 5:
        if passenger == 0 and (x, y) == pickup:
            passenger = 1
        elif passenger == 1 and (x, y) == dropoff:
            return x, y, 0, 2.0, True
    return x, y, passenger, -0.1, False


def place(env: TaxiEnv, x: int, y: int, passenger: int) -> None:
    """Put the taxi of a reset single env at (x, y) (white-box: tests start from chosen states)."""
    core = env.core
    core.state[0] = core.encode(0, passenger, core.map.cell(x, y))


def expected_obs(x: int, y: int, passenger: int) -> np.ndarray:
    obs = np.zeros(72, dtype=np.float32)
    obs[passenger * 36 + (y - 1) * 6 + (x - 1)] = 1.0
    return obs


def test_map_matches_spec():
    m = TAXI_MAPS["8x8"]
    assert m.rows == SPEC_MAP and m.locations == SPEC_LOCATIONS
    assert m.walkable.sum() == 30
    assert len(m.start_cells) == 26
    starts = {m.xy(c) for c in m.start_cells}
    assert not starts & set(SPEC_LOCATIONS.values())
    assert TaxiEnv().tasks == tuple(f"{p}-{d}" for p in "RGYB" for d in "RGYB" if p != d)


@pytest.mark.parametrize("task", TaxiEnv().tasks)
def test_every_transition_matches_reference(task):
    core = TaxiCore(1, task=task)
    k = core.tasks.index(task)
    for y in range(1, 7):
        for x in range(1, 7):
            if SPEC_MAP[y][x] != ".":
                continue
            for passenger in (0, 1):
                s = core.encode(0, passenger, core.map.cell(x, y))
                for action in range(6):
                    nx, ny, np_, reward, done = reference_step(x, y, passenger, action, task)
                    assert core.next_state[k, s, action] == core.encode(0, np_, core.map.cell(nx, ny))
                    assert core.reward[k, s, action] == pytest.approx(reward)
                    assert core.terminates[k, s, action] == done


@pytest.mark.parametrize(
    ("x", "y", "action"),
    [
        (1, 1, 1),
        (1, 1, 4),
        (2, 1, 3),
        (4, 1, 4),
        (6, 6, 2),
        (6, 6, 3),
        (1, 5, 3),
        (3, 6, 4),
        (3, 6, 3),
        (5, 5, 4),
    ],
)
def test_walls_and_border_block_moves(x, y, action):
    env = TaxiEnv(task="R-G", mode="test")
    env.reset(seed=0)
    place(env, x, y, 0)
    obs, reward, terminated, truncated, _ = env.step(action)
    np.testing.assert_array_equal(obs, expected_obs(x, y, 0))
    assert reward == pytest.approx(-0.1) and not terminated and not truncated


def test_pickup_and_dropoff_sequence():
    env = TaxiEnv(task="R-G", mode="test")
    env.reset(seed=0)
    place(env, 2, 1, 0)
    steps = [
        (5, (2, 1, 0), -0.1, False),  # pick-up away from the pickup: nothing
        (4, (1, 1, 0), -0.1, False),  # west onto R
        (5, (1, 1, 1), -0.1, False),  # pick-up
        (5, (1, 1, 1), -0.1, False),  # drop-off at the pickup (not the goal): nothing
        (2, (1, 2, 1), -0.1, False),
        (2, (1, 3, 1), -0.1, False),
    ]
    for action, (x, y, p), reward, terminated in steps:
        obs, r, term, trunc, _ = env.step(action)
        np.testing.assert_array_equal(obs, expected_obs(x, y, p))
        assert (r, term, trunc) == (pytest.approx(reward), terminated, False)
    for action in (3, 3, 3, 3, 3, 1, 1):  # east to (6, 3), north to G (6, 1)
        env.step(action)
    obs, r, term, trunc, _ = env.step(5)
    assert r == pytest.approx(2.0) and term and not trunc


def test_dropoff_at_wrong_location_does_nothing():
    env = TaxiEnv(task="R-G", mode="test")
    env.reset(seed=0)
    place(env, 1, 6, 1)  # at Y with the passenger; the goal is G
    obs, r, term, _, _ = env.step(5)
    np.testing.assert_array_equal(obs, expected_obs(1, 6, 1))
    assert r == pytest.approx(-0.1) and not term


def test_truncated_after_50_steps_not_terminated():
    env = TaxiEnv(task="R-G", mode="test")
    env.reset(seed=3)
    total = 0.0
    for t in range(1, 51):
        _, r, term, trunc, _ = env.step(0)
        total += r
        assert not term
        assert trunc == (t == 50)
    assert total == pytest.approx(-5.0)


def test_delivery_on_step_50_is_terminated_only():
    env = TaxiEnv(task="R-G", mode="test")
    env.reset(seed=0)
    for _ in range(49):
        env.step(0)
    place(env, 6, 1, 1)
    _, r, term, trunc, _ = env.step(5)
    assert r == pytest.approx(2.0) and term and not trunc


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), actions=st.lists(st.integers(0, 5), min_size=1, max_size=60))
def test_observation_is_one_hot_and_rewards_valid(seed, actions):
    env = TaxiEnv(task=None, mode="train")
    obs, _ = env.reset(seed=seed)
    for a in actions:
        assert obs.dtype == np.float32 and obs.shape == (72,) and obs.sum() == 1 and obs.max() == 1
        assert obs in env.observation_space
        cell = int(obs.argmax()) % 36
        assert TAXI_MAPS["8x8"].walkable[cell]
        obs, r, term, trunc, _ = env.step(a)
        assert r in (pytest.approx(-0.1), pytest.approx(2.0))
        assert (r > 0) == term
        if term or trunc:
            obs, _ = env.reset()


@pytest.mark.parametrize("mode", ["train", "test"])
def test_start_distribution(mode):
    n = 26 * 400
    core = TaxiCore(n, task=None, mode=mode)
    core.reset(seed=0)
    _, passenger, cell = core.decode(core.state)
    counts = np.bincount(cell, minlength=36)
    start = TAXI_MAPS["8x8"].start_cells
    assert set(np.flatnonzero(counts)) == set(start)
    # Uniform over the 26 start cells: every count within 5 sigma of n / 26.
    assert np.all(np.abs(counts[start] - n / 26) < 5 * np.sqrt(n / 26))
    if mode == "train":
        assert abs(passenger.mean() - 0.5) < 0.03
    else:
        assert passenger.max() == 0
    task_counts = np.bincount(core.task, minlength=12)
    assert np.all(np.abs(task_counts - n / 12) < 5 * np.sqrt(n / 12))


def test_seeding_reproduces_episodes_and_differs_across_seeds():
    def first_obs(env, seed):
        out = [env.reset(seed=seed)[0]]
        out += [env.reset()[0] for _ in range(5)]
        return np.array(out)

    env_a, env_b = TaxiEnv(mode="train"), TaxiEnv(mode="train")
    np.testing.assert_array_equal(first_obs(env_a, 7), first_obs(env_b, 7))
    assert not np.array_equal(first_obs(env_a, 7), first_obs(env_a, 8))
    # Consecutive episodes of one seed differ (not stuck on one start state).
    assert len({o.argmax() for o in first_obs(env_a, 7)}) > 1


def test_set_task_applies_at_next_reset():
    env = TaxiEnv(task="R-G")
    env.reset(seed=0)
    env.set_task("B-Y")
    assert env.task == "R-G"
    _, info = env.reset()
    assert env.task == "B-Y" and info["task"] == "B-Y"


def test_random_task_is_drawn_per_episode():
    env = TaxiEnv(task=None)
    tasks = {env.reset(seed=s)[1]["task"] for s in range(60)}
    assert len(tasks) == 12


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "R-R"}, "valid tasks: R-G"),
        ({"task": "X-Y"}, "valid tasks"),
        ({"mode": "eval"}, "valid modes: train, test"),
        ({"grid": "9x9"}, "valid grids: 8x8"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_arguments_raise_listing_valid_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TaxiEnv(**kwargs)


@pytest.mark.parametrize("action", [6, -1, 2.0, "1", None])
def test_out_of_range_action_raises(action):
    env = TaxiEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_gymnasium_make_selects_task_and_mode():
    env = gym.make("msol/Taxi-v0", task="R-G", mode="test")
    _, info = env.reset(seed=0)
    assert info["task"] == "R-G" and env.unwrapped.mode == "test"
    assert env.unwrapped.tasks == TaxiEnv().tasks
    with pytest.raises(ValueError, match="valid tasks"):
        gym.make("msol/Taxi-v0", task="nope")


@pytest.mark.parametrize(
    ("rows", "locations", "message"),
    [
        (("###", "#.#", "#.."), {"R": (1, 1), "G": (1, 2)}, "border"),
        (("####", "#..#", "####"), {"R": (1, 1)}, "at least 2"),
        (("####", "#.##", "####"), {"R": (1, 1), "G": (2, 1)}, "not a free cell"),
        (("####", "#.x#", "####"), {"R": (1, 1), "G": (2, 1)}, "only contain"),
        (("####", "#..#", "###"), {"R": (1, 1), "G": (2, 1)}, "rectangle"),
        (("####", "#..#", "####"), {"R-1": (1, 1), "G": (2, 1)}, "names"),
        (("####", "#..#", "####"), {"R": (1, 1), "G": (1, 1)}, "distinct"),
    ],
)
def test_taxi_map_validation(rows, locations, message):
    with pytest.raises(ValueError, match=message):
        TaxiMap(rows, locations)


@pytest.mark.parametrize(("original", "moved"), [("8x8", "8x8-moved"), ("10x10", "10x10-moved")])
def test_moved_maps_shift_every_location_by_one_cell(original, moved):
    a, b = TAXI_MAPS[original], TAXI_MAPS[moved]
    assert a.rows == b.rows
    for name, (x, y) in a.locations.items():
        bx, by = b.locations[name]
        assert abs(bx - x) + abs(by - y) == 1


def test_10x10_map_and_custom_map():
    env = TaxiEnv(grid="10x10")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (128,) and len(env.core.map.start_cells) == 51
    custom = TaxiMap(("#####", "#...#", "#####"), {"A": (1, 1), "B": (3, 1)}, "corridor")
    env = TaxiEnv(task="A-B", mode="test", grid=custom)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6,) and env.tasks == ("A-B", "B-A")
    assert obs.argmax() == 1  # the only start cell: the middle (2, 1)
    rewards = [env.step(a)[1] for a in (4, 5, 3, 3)]
    assert env.step(5)[1:3] == (pytest.approx(2.0), True)
    assert rewards == [pytest.approx(-0.1)] * 4


def test_ansi_render_shows_taxi_and_task():
    env = gym.make("msol/Taxi-v0", task="R-G", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert "T" in text and "task R-G" in text and text.count("\n") >= 9
    assert envs.TaxiEnv().render() is None


def test_grid_observations_cover_every_walkable_cell():
    cells, obs, shape, walls = TaxiCore(1).grid_observations()
    assert len(cells) == 60 and obs.shape == (60, 72) and shape == (8, 8)
    assert walls.sum() == 64 - 30 and not walls[1, 1] and walls[1, 3]
    for (x, y, passenger), row in zip(cells, obs, strict=True):
        np.testing.assert_array_equal(row, expected_obs(x, y, int(passenger)))
    with pytest.raises(ValueError, match="heading"):
        TaxiCore(1).grid_observations(heading=1)
