"""Optimal undiscounted returns: Taxi family by shortest paths, Moving Bandits by quadrature and Monte Carlo.

Taxi family. With -0.1 per step and +2 (instead of -0.1) on delivery, an episode delivering at step ``D`` returns
``2 - 0.1 (D - 1)``, decreasing in ``D``, and any delivery within the 50 steps beats none (-5.0). So the optimum
from a state is given by ``D(s)``, the fewest steps to a delivery, found by breadth-first layers over the env's own
transition tables (state = (heading, passenger, cell)): ``D(s) = 1`` if some action delivers from ``s``, else
``1 + min_a D(next(s, a))``. The returns are then averaged exactly over the env's own start distribution
(``core.start_states``, drawn uniformly: start cells x passenger aboard or not in "train" x headings).

Moving Bandits. The agent lives on the lattice ``(200 + 20a, 200 + 20b)`` and is rewarded at every step after it is
within 50 of the correct goal, so the optimal policy walks a shortest (Manhattan) path to the nearest lattice point
inside the goal's disk, ``k`` steps away, and stays: return ``50 - max(k - 1, 0)``. ``moving_bandits_optimal_return``
averages that over goals uniform in [0, 400]^2 with a deterministic midpoint rule (error ~1e-3). The task-blind
"one goal" policy (optimal for goal 0 whatever the task) has no closed form: ``moving_bandits_policy_return``
runs it on the batched env with a fixed seed (Monte Carlo).
"""

from __future__ import annotations

import numpy as np

from msol.envs.core import check_mode
from msol.envs.directional_taxi import DirectionalTaxiCore
from msol.envs.moving_bandits import ARENA, GOAL_RADIUS, START, STEP_SIZE, MovingBanditsCore
from msol.envs.taxi import DELIVERY_REWARD, STEP_REWARD, TaxiCore, TaxiFamilyCore, TaxiMap


def steps_to_deliver(core: TaxiFamilyCore) -> np.ndarray:
    """Fewest steps to a delivery from every (task, state) of ``core``'s tables (inf if impossible)."""
    delivers_now = core.terminates.any(axis=2)
    steps = np.where(delivers_now, 1.0, np.inf)
    tasks = np.arange(len(core.tasks))[:, None, None]
    while True:  # one BFS layer per iteration: at most num_states iterations
        via_move = 1.0 + steps[tasks, core.next_state].min(axis=2)
        updated = np.where(delivers_now, 1.0, via_move)
        if np.array_equal(updated, steps):
            return steps
        steps = updated


def taxi_optimal_returns(
    grid: str | TaxiMap = "8x8", mode: str = "test", directional: bool = False
) -> dict[str, float]:
    """Expected optimal return of each task (name -> return) under ``mode``'s start distribution."""
    check_mode(mode)
    core = (DirectionalTaxiCore if directional else TaxiCore)(1, mode=mode, grid=grid)
    steps = steps_to_deliver(core)
    horizon = core.max_episode_steps
    returns = np.where(steps <= horizon, DELIVERY_REWARD + STEP_REWARD * (steps - 1), STEP_REWARD * horizon)
    # The env draws its start state uniformly from core.start_states.
    return {task: float(returns[k, core.start_states].mean()) for k, task in enumerate(core.tasks)}


def taxi_optimal_return(grid: str | TaxiMap = "8x8", mode: str = "test", directional: bool = False) -> float:
    """Optimal return averaged over the tasks (0.590 for the paper's Taxi in test mode, 1.031 in train)."""
    return float(np.mean(list(taxi_optimal_returns(grid, mode, directional).values())))


# --- Moving Bandits ------------------------------------------------------------------------------------------------
_OFFSETS = np.array([(da, db) for da in range(-3, 4) for db in range(-3, 4)])  # covers +-60 > the 50 radius


def moving_bandits_target(position: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Lattice offsets (steps along x, y) from ``position`` to the nearest-in-steps point within 50 of ``goal``.

    Shapes (M, 2) -> int (M, 2); ties broken by Euclidean distance to the goal.
    """
    nearest = np.round((goal - position) / STEP_SIZE)
    offsets = nearest[:, None, :] + _OFFSETS[None]  # (M, 49, 2)
    points = position[:, None, :] + offsets * STEP_SIZE
    dist2 = np.sum((points - goal[:, None, :]) ** 2, axis=2)
    steps = np.abs(offsets).sum(axis=2)
    cost = np.where(dist2 < GOAL_RADIUS**2, steps + dist2 / (4 * GOAL_RADIUS**2), np.inf)  # dist term < 1
    return offsets[np.arange(len(goal)), cost.argmin(axis=1)].astype(np.int64)


def moving_bandits_goal_policy(position: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Actions of the optimal policy for ``goal``: a step along x, then y, towards its target, then stay."""
    target = moving_bandits_target(position, goal)
    dx, dy = target[:, 0], target[:, 1]
    return np.select([dx > 0, dx < 0, dy > 0, dy < 0], [1, 2, 3, 4], default=0)


def moving_bandits_optimal_return(resolution: int = 1000) -> float:
    """Optimal expected return (~43.8): midpoint rule over goals on a ``resolution``^2 grid of [0, 400]^2."""
    axis = (np.arange(resolution) + 0.5) * ARENA / resolution
    horizon = MovingBanditsCore.max_episode_steps
    total = 0.0
    for y in axis:  # one grid row at a time keeps the (goals, 49, 2) candidates small
        goals = np.stack([axis, np.full(resolution, y)], axis=1)
        steps = np.abs(moving_bandits_target(np.broadcast_to(START, goals.shape), goals)).sum(axis=1)
        total += float(np.sum(horizon - np.maximum(steps - 1, 0)))
    return total / resolution**2


def moving_bandits_policy_return(
    followed_goal: int | None = 0, episodes: int = 20_000, seed: int = 0
) -> float:
    """Monte Carlo mean return, tasks uniform, of the policy optimal for goal ``followed_goal``.

    ``followed_goal=0``: the task-blind "one goal" policy (~21.9); ``None``: it follows the correct goal (the
    optimum, a check on the env against ``moving_bandits_optimal_return``).
    """
    core = MovingBanditsCore(episodes)
    core.reset(seed=seed)
    total = np.zeros(episodes)
    rows = np.arange(episodes)
    followed = core.task if followed_goal is None else np.full(episodes, followed_goal)
    for _ in range(core.max_episode_steps):
        actions = moving_bandits_goal_policy(core.position, core.goals[rows, followed])
        reward, _, _ = core.step(actions)
        total += reward
    return float(total.mean())


def optimal_returns_markdown(mb_resolution: int = 1000, mb_episodes: int = 100_000, seed: int = 0) -> str:
    """The optimal-return tables of docs/envs.md (``python -m msol.envs.optimal``)."""
    from msol.envs.taxi import TAXI_MAPS

    lines = [
        "| grid | Taxi test | Taxi train | Directional Taxi test | Directional Taxi train |",
        "|---|---:|---:|---:|---:|",
    ]
    for grid in TAXI_MAPS:
        values = [taxi_optimal_return(grid, mode, d) for d in (False, True) for mode in ("test", "train")]
        lines.append(f"| {grid} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    per_task = {d: taxi_optimal_returns("8x8", "test", d) for d in (False, True)}
    lines += ["", "| task (8x8, test) | Taxi | Directional Taxi |", "|---|---:|---:|"]
    lines += [f"| {t} | {per_task[False][t]:.3f} | {per_task[True][t]:.3f} |" for t in per_task[False]]
    optimum = moving_bandits_optimal_return(mb_resolution)
    followed = moving_bandits_policy_return(None, mb_episodes, seed)
    one_goal = moving_bandits_policy_return(0, mb_episodes, seed)
    lines += [
        "",
        "| Moving Bandits | return |",
        "|---|---:|",
        f"| optimum, midpoint rule on a {mb_resolution}² goal grid | {optimum:.3f} |",
        f"| optimal policy run in the env, {mb_episodes:,} episodes, seed {seed} | {followed:.3f} |",
        f"| one-goal policy (always goal 0) in the env, {mb_episodes:,} episodes, seed {seed} | {one_goal:.3f} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(optimal_returns_markdown())
