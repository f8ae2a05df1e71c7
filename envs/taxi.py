"""Taxi (MSOL paper §5; spec: envs.md "Taxi") and the parametric Taxi used for transfer.

The whole family is tabular: a state is ``(heading, passenger-in-taxi, cell)`` (one heading for plain Taxi), so the
batched core precomputes ``next_state``/``reward``/``terminated`` tables of shape (tasks, states, actions) once and a
step for N envs is three array gathers. The same tables feed ``msol.envs.optimal``'s shortest paths, so the optimal
returns are computed on exactly the dynamics the agent sees.

Maps (``x`` = column, ``y`` = row, (0, 0) top-left, ``#`` wall, ``.`` free; the border is always wall):

``"8x8"`` (the paper's map; R (1,1), G (6,1), Y (1,6), B (5,6))::

    ########
    #R.#..G#
    #..#...#
    #......#
    #......#
    #.#.#..#
    #Y#.#B.#
    ########

``"10x10"`` (project design, the paper does not publish it: the 8x8 map's structure, a top divider and two bottom
pockets, scaled to an 8x8 interior; R (1,1), G (8,1), Y (1,8), B (6,8))::

    ##########
    #R..#...G#
    #...#....#
    #...#....#
    #........#
    #........#
    #.#.#....#
    #.#.#....#
    #Y#.#.B..#
    ##########

``"8x8-moved"`` / ``"10x10-moved"``: the same walls with every location moved by one cell vertically towards the
middle row (8x8: R (1,2), G (6,2), Y (1,5), B (5,5); 10x10: R (1,2), G (8,2), Y (1,7), B (6,7)). A rule rather
than four ad-hoc picks: every location has a free cell there on both maps, and the shift changes both the cell
an option must reach and the approach to it.

Any other layout: ``TaxiMap(rows=[...], locations={...})``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from msol.envs._rng import uniform_integers
from msol.envs.core import ArrayRecycler, BatchedCore, CoreEnv

STEP_REWARD = -0.1
DELIVERY_REWARD = 2.0
LOCATION_NAMES = ("R", "G", "Y", "B")
START_DRAW = 1  # the start state's draw (draw 0 is the task, see envs.core)


@dataclass(frozen=True)
class TaxiMap:
    """A Taxi layout: wall rows and named pickup/drop-off locations ``{name: (x, y)}``.

    Cells are indexed over the interior (the border excluded, inner walls included) row by row:
    ``cell = (y - 1) * (width - 2) + (x - 1)``; that index is the observation's cell coordinate.
    """

    rows: tuple[str, ...]
    locations: Mapping[str, tuple[int, int]]
    name: str = "custom"
    walkable: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = tuple(self.rows)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "locations", dict(self.locations))
        if len(rows) < 3 or any(len(r) != len(rows[0]) for r in rows) or len(rows[0]) < 3:
            raise ValueError(f"rows must be a rectangle of at least 3x3 characters, got {rows!r}")
        if set("".join(rows)) - {"#", "."}:
            raise ValueError(f"rows may only contain '#' (wall) and '.' (free), got {rows!r}")
        border = rows[0] + rows[-1] + "".join(r[0] + r[-1] for r in rows)
        if set(border) != {"#"}:
            raise ValueError(f"the border of the map must be wall ('#'), got {rows!r}")
        if any(not name or "-" in name for name in self.locations):
            raise ValueError(f"location names must be non-empty without '-', got {list(self.locations)}")
        if len(self.locations) < 2:
            raise ValueError(f"need at least 2 locations, got {dict(self.locations)!r}")
        for loc, (x, y) in self.locations.items():
            if not (0 <= y < len(rows) and 0 <= x < len(rows[0])) or rows[y][x] != ".":
                raise ValueError(f"location {loc}={(x, y)} is not a free cell of the map")
        if len(set(self.locations.values())) != len(self.locations):
            raise ValueError(f"locations must be distinct cells, got {dict(self.locations)!r}")
        interior = np.array([[c == "." for c in r[1:-1]] for r in rows[1:-1]])
        object.__setattr__(self, "walkable", interior.reshape(-1))

    @property
    def width(self) -> int:
        return len(self.rows[0])

    @property
    def height(self) -> int:
        return len(self.rows)

    @property
    def num_cells(self) -> int:
        return (self.width - 2) * (self.height - 2)

    def cell(self, x: int, y: int) -> int:
        return (y - 1) * (self.width - 2) + (x - 1)

    def xy(self, cell: int | np.ndarray) -> tuple[Any, Any]:
        return cell % (self.width - 2) + 1, cell // (self.width - 2) + 1

    @property
    def location_cells(self) -> dict[str, int]:
        return {loc: self.cell(x, y) for loc, (x, y) in self.locations.items()}

    @property
    def start_cells(self) -> np.ndarray:
        """Walkable cells that are not a location: where a taxi may start (26 on the paper's map)."""
        start = self.walkable.copy()
        start[list(self.location_cells.values())] = False
        return np.flatnonzero(start)

    @property
    def tasks(self) -> tuple[str, ...]:
        """Ordered (pickup, drop-off) pairs of distinct locations, named ``"<pickup>-<dropoff>"``."""
        return tuple(f"{p}-{d}" for p in self.locations for d in self.locations if p != d)


_ROWS_8X8 = ("########", "#..#...#", "#..#...#", "#......#", "#......#", "#.#.#..#", "#.#.#..#", "########")
_ROWS_10X10 = (
    "##########", "#...#....#", "#...#....#", "#...#....#", "#........#",
    "#........#", "#.#.#....#", "#.#.#....#", "#.#.#....#", "##########",
)  # fmt: skip
TAXI_MAPS: dict[str, TaxiMap] = {
    m.name: m
    for m in (
        TaxiMap(_ROWS_8X8, {"R": (1, 1), "G": (6, 1), "Y": (1, 6), "B": (5, 6)}, "8x8"),
        TaxiMap(_ROWS_8X8, {"R": (1, 2), "G": (6, 2), "Y": (1, 5), "B": (5, 5)}, "8x8-moved"),
        TaxiMap(_ROWS_10X10, {"R": (1, 1), "G": (8, 1), "Y": (1, 8), "B": (6, 8)}, "10x10"),
        TaxiMap(_ROWS_10X10, {"R": (1, 2), "G": (8, 2), "Y": (1, 7), "B": (6, 7)}, "10x10-moved"),
    )
}


def get_map(grid: str | TaxiMap) -> TaxiMap:
    if isinstance(grid, TaxiMap):
        return grid
    if grid not in TAXI_MAPS:
        raise ValueError(f"grid={grid!r} is not valid; valid grids: {', '.join(TAXI_MAPS)} (or a TaxiMap)")
    return TAXI_MAPS[grid]


class TaxiFamilyCore(BatchedCore):
    """Tabular core shared by Taxi and Directional Taxi; subclasses give the headings and the action semantics.

    State index ``s = (heading * 2 + passenger) * num_cells + cell``; the observation is ``one_hot(s)``.
    """

    num_headings: ClassVar[int]
    num_actions: ClassVar[int]
    pick_action: ClassVar[int]
    num_draws = 2  # task, start state

    def __init__(
        self, num_envs: int, task: str | int | None = None, mode: str = "train", grid: str | TaxiMap = "8x8"
    ) -> None:
        self.map = get_map(grid)
        self.tasks = self.map.tasks
        self.num_states = self.num_headings * 2 * self.map.num_cells
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (self.num_states,), np.float32)
        self.single_action_space = gym.spaces.Discrete(self.num_actions)
        super().__init__(num_envs, task, mode)
        self.next_state, self.reward, self.terminates = build_tables(self)
        # Flat views so a batched step is one gather per table: index = (task * S + s) * A + a.
        self._next_flat = self.next_state.reshape(-1)
        self._reward_flat = self.reward.reshape(-1)
        self._term_flat = self.terminates.reshape(-1)
        self._row_offsets = np.arange(self.num_envs) * self.num_states
        self._obs_arrays = ArrayRecycler((self.num_envs, self.num_states), np.float32)
        self.start_states = self._start_states()
        self.state = np.zeros(self.num_envs, dtype=np.int64)

    def motion(self, heading: int, action: int) -> tuple[int, int, int]:
        """``(dx, dy, new_heading)`` of a non-pick action taken with ``heading``."""
        raise NotImplementedError

    def _start_states(self) -> np.ndarray:
        """The equally likely start states: every start cell x heading, x passenger aboard or not in "train".

        One uniform draw over this list is the spec's start distribution (uniform cell, uniform heading,
        passenger aboard with p = 0.5 in "train", never in "test").
        """
        passengers = (0, 1) if self.mode == "train" else (0,)
        cells = self.map.start_cells
        return np.concatenate(
            [self.encode(h, p, cells) for h in range(self.num_headings) for p in passengers]
        )

    def encode(self, heading: Any, passenger: Any, cell: Any) -> Any:
        return (heading * 2 + passenger) * self.map.num_cells + cell

    def decode(self, state: Any) -> tuple[Any, Any, Any]:
        """``(heading, passenger, cell)`` of state index(es)."""
        cell = state % self.map.num_cells
        hp = state // self.map.num_cells
        return hp // 2, hp % 2, cell

    def _reset_state(self, ids: np.ndarray, draws: np.ndarray) -> None:
        self.state[ids] = self.start_states[uniform_integers(draws[:, START_DRAW], len(self.start_states))]

    def _step_state(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = (self.task * self.num_states + self.state) * self.num_actions + actions
        self.state = self._next_flat[index]
        return self._reward_flat[index], self._term_flat[index]

    def observe(self) -> np.ndarray:
        obs = self._obs_arrays.get()
        obs.fill(0.0)
        obs.reshape(-1)[self._row_offsets + self.state] = 1.0  # faster than indexing an identity matrix
        return obs

    def grid_observations(
        self, heading: int = 0
    ) -> tuple[list[tuple[int, int, bool]], np.ndarray, tuple, np.ndarray]:
        """Observations of the taxi on every walkable cell, without and with the passenger (for option maps).

        Returns ``(cells, obs, shape, walls)``: ``cells[i] = (x, y, passenger_aboard)`` is the state of row ``i``
        of ``obs`` (float32, (cells, obs_dim)); ``shape`` is the map's (height, width) and ``walls`` its bool
        wall mask. The Directional Taxi shows the taxi facing ``heading`` (0 north, 1 east, 2 south, 3 west).
        """
        if not 0 <= heading < self.num_headings:
            raise ValueError(f"heading={heading!r} is not valid; valid: 0..{self.num_headings - 1}")
        walkable = np.flatnonzero(self.map.walkable)
        cells, states = [], []
        for passenger in (0, 1):
            for cell in walkable:
                x, y = self.map.xy(int(cell))
                cells.append((int(x), int(y), bool(passenger)))
                states.append(self.encode(heading, passenger, int(cell)))
        obs = np.zeros((len(states), self.num_states), dtype=np.float32)
        obs[np.arange(len(states)), states] = 1.0
        walls = np.array([[c == "#" for c in row] for row in self.map.rows])
        return cells, obs, walls.shape, walls

    def render_text(self, env: int = 0) -> str:
        """The map with the locations (lower case: the current task's pickup and drop-off) and the taxi."""
        heading, passenger, cell = (int(v) for v in self.decode(self.state[env]))
        grid = [list(r) for r in self.map.rows]
        pickup, dropoff = self.tasks[int(self.task[env])].split("-")
        for loc, (x, y) in self.map.locations.items():
            grid[y][x] = loc.lower() if loc in (pickup, dropoff) else loc
        x, y = self.map.xy(cell)
        grid[y][x] = self.taxi_symbol(heading)
        aboard = "aboard" if passenger else "waiting"
        status = f"task {self.tasks[int(self.task[env])]}, step {self.elapsed[env]}, passenger {aboard}"
        return "\n".join("".join(r) for r in grid) + "\n" + status + "\n"

    def render_rgb(self, env: int = 0, cell_pixels: int = 16) -> np.ndarray:
        """An RGB image (uint8) of the map: walls grey, locations coloured (the task's two darker), taxi black
        while the passenger waits and orange once aboard."""
        colours = {"R": (220, 60, 60), "G": (60, 170, 60), "Y": (230, 200, 40), "B": (60, 90, 220)}
        _heading, passenger, cell = (int(v) for v in self.decode(self.state[env]))
        pickup, dropoff = self.tasks[int(self.task[env])].split("-")
        walls = np.array([[c == "#" for c in row] for row in self.map.rows])
        img = np.where(walls[..., None], 90, 245).astype(np.uint8).repeat(3, axis=2)
        for loc, (x, y) in self.map.locations.items():
            shade = 0.6 if loc in (pickup, dropoff) else 1.0
            img[y, x] = (np.array(colours[loc]) * shade).astype(np.uint8)
        x, y = self.map.xy(cell)
        img[y, x] = (240, 140, 20) if passenger else (20, 20, 20)
        return np.kron(img, np.ones((cell_pixels, cell_pixels, 1), dtype=np.uint8))

    def taxi_symbol(self, heading: int) -> str:
        return "T"


def build_tables(core: TaxiFamilyCore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition, reward and termination tables, shape (tasks, states, actions), from the spec's rules.

    Moving into a wall (or the border) leaves the taxi in place; pick-up succeeds on the task's pickup cell without
    passenger; drop-off succeeds on its drop-off cell with passenger and ends the episode (the passenger leaves the
    taxi); every other pick/drop does nothing. Reward -0.1 per step, +2 instead on delivery.
    """
    m = core.map
    locations = m.location_cells
    pickups = np.array([locations[t.split("-")[0]] for t in core.tasks])[:, None]
    dropoffs = np.array([locations[t.split("-")[1]] for t in core.tasks])[:, None]
    states = np.arange(core.num_states)
    heading, passenger, cell = core.decode(states)
    x, y = m.xy(cell)
    shape = (len(core.tasks), core.num_states, core.num_actions)
    next_state = np.zeros(shape, dtype=np.int64)
    reward = np.full(shape, STEP_REWARD)
    terminates = np.zeros(shape, dtype=bool)
    for a in range(core.num_actions):
        if a == core.pick_action:
            pick = (passenger == 0) & (cell == pickups)
            drop = (passenger == 1) & (cell == dropoffs)
            new_passenger = np.where(pick, 1, np.where(drop, 0, passenger))
            next_state[:, :, a] = core.encode(heading, new_passenger, cell)
            reward[:, :, a] = np.where(drop, DELIVERY_REWARD, STEP_REWARD)
            terminates[:, :, a] = drop
            continue
        new_heading, new_cell = heading.copy(), cell.copy()
        for h in range(core.num_headings):
            dx, dy, h2 = core.motion(h, a)
            at_h = heading == h
            tx, ty = x[at_h] + dx, y[at_h] + dy
            inside = (tx >= 1) & (tx <= m.width - 2) & (ty >= 1) & (ty <= m.height - 2)
            target = m.cell(np.clip(tx, 1, m.width - 2), np.clip(ty, 1, m.height - 2))
            free = inside & m.walkable[target]
            new_cell[at_h] = np.where(free, target, cell[at_h])
            new_heading[at_h] = h2
        next_state[:, :, a] = core.encode(new_heading, passenger, new_cell)
    return next_state, reward, terminates


class TaxiCore(TaxiFamilyCore):
    """Taxi: actions 0 no-op, 1 north (y-1), 2 south (y+1), 3 east (x+1), 4 west (x-1), 5 pick-up/drop-off."""

    num_headings = 1
    num_actions = 6
    pick_action = 5
    MOVES: ClassVar[dict[int, tuple[int, int]]] = {0: (0, 0), 1: (0, -1), 2: (0, 1), 3: (1, 0), 4: (-1, 0)}

    def motion(self, heading: int, action: int) -> tuple[int, int, int]:
        dx, dy = self.MOVES[action]
        return dx, dy, heading


class TaxiFamilyEnv(CoreEnv):
    """The constructor and rendering shared by the Taxi family's single environments."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        task: str | None = None,
        mode: str = "train",
        grid: str | TaxiMap = "8x8",
        render_mode: str | None = None,
    ) -> None:
        super().__init__(task=task, mode=mode, render_mode=render_mode, grid=grid)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            return self.core.render_text()
        if self.render_mode == "rgb_array":
            return self.core.render_rgb()
        return None


class TaxiEnv(TaxiFamilyEnv):
    """Taxi: deliver a passenger from the task's pickup to its drop-off location (spec: envs.md "Taxi").

    Args:
        task: ``"<pickup>-<dropoff>"`` with distinct locations from R, G, Y, B (12 tasks: ``env.tasks``), or
            ``None``: a task drawn uniformly at every reset (from the seeded per-episode draws).
        mode: ``"train"`` (taxi uniform over the start cells, passenger already aboard with p=0.5) or ``"test"``
            (passenger never aboard).
        grid: a name from ``msol.envs.taxi.TAXI_MAPS`` ("8x8" paper map, "8x8-moved", "10x10", "10x10-moved") or a
            ``TaxiMap``.
        render_mode: None or "ansi".

    Observation: float32 one-hot of ``passenger * num_cells + cell`` (72 on 8x8, 128 on 10x10; cells indexed over
    the interior, see ``TaxiMap``). The task is NOT observed. Actions: ``Discrete(6)``, see ``TaxiCore``.
    ``terminated`` on delivery; ``truncated`` at the 50th step otherwise (no TimeLimit wrapper needed).
    ``set_task`` takes effect at the next reset.
    """

    core_class = TaxiCore
