"""Directional Taxi (MSOL paper §5; spec: envs.md "Directional Taxi").

The Taxi map, rewards and tasks, but the taxi faces a heading and moves only forward. Headings: 0 north (y-1),
1 east (x+1), 2 south (y+1), 3 west (x-1); clockwise is +1 mod 4. The spec's **choice**: true 90° rotations (the
authors' code cycles headings down -> up -> right -> left, which is not a geometric rotation).
"""

from __future__ import annotations

from msol.envs.taxi import TaxiFamilyCore, TaxiFamilyEnv

HEADINGS: tuple[tuple[int, int], ...] = ((0, -1), (1, 0), (0, 1), (-1, 0))  # N, E, S, W as (dx, dy)
HEADING_SYMBOLS = "^>v<"


class DirectionalTaxiCore(TaxiFamilyCore):
    """Actions: 0 no-op, 1 forward, 2 rotate clockwise, 3 rotate counter-clockwise, 4 pick-up/drop-off."""

    num_headings = 4
    num_actions = 5
    pick_action = 4

    def motion(self, heading: int, action: int) -> tuple[int, int, int]:
        if action == 1:
            return (*HEADINGS[heading], heading)
        turn = {0: 0, 2: 1, 3: -1}[action]
        return 0, 0, (heading + turn) % 4

    def taxi_symbol(self, heading: int) -> str:
        return HEADING_SYMBOLS[heading]


class DirectionalTaxiEnv(TaxiFamilyEnv):
    """Taxi whose taxi faces a heading (uniform at start) and moves forward or rotates by 90°.

    Args: as ``msol.envs.taxi.TaxiEnv`` (``task`` ``"<pickup>-<dropoff>"`` or None for random at each reset, ``mode``
    "train"/"test", ``grid``, ``render_mode``).

    Observation: float32 one-hot of ``(heading * 2 + passenger) * num_cells + cell`` (288 on the 8x8 map).
    Actions: ``Discrete(5)``, see ``DirectionalTaxiCore``. Termination/truncation as Taxi (50 steps).
    In "ansi" renders the taxi is its heading arrow.
    """

    core_class = DirectionalTaxiCore
