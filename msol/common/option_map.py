"""The option map of a grid env (paper Fig. 3 for Taxi), for any learner with options: one panel per task, each
walkable cell coloured by the option the task's master picks there, ``x`` where it is likely to terminate.

Learners give a chooser (:data:`ChooseOptions`); MSOL's policies, MLSH's sub-policies and Option-Critic's options
are all drawn by :func:`plot_option_map`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch

_OPTION_COLOURS = plt.get_cmap("tab10")
_PRIMITIVE_COLOUR = (0.55, 0.55, 0.55)


# (observations of every map cell [C, obs_dim] on the CPU, task slot) -> (option the master picks on each cell [C],
# probability that this option terminates there [C], or None for options without learned terminations)
ChooseOptions = Callable[[torch.Tensor, int], tuple[np.ndarray, np.ndarray | None]]


def option_colour(num_options: int, option: int) -> tuple[float, float, float]:
    """Option ``option``'s colour; every index from ``num_options`` on is a primitive action (one grey)."""
    return _OPTION_COLOURS(option)[:3] if option < num_options else _PRIMITIVE_COLOUR


def option_legend(num_options: int, num_primitives: int = 0, name: str = "option") -> list[Patch]:
    """Legend entries: one colour per option, one for all primitive actions."""
    handles = [Patch(color=option_colour(num_options, k), label=f"{name} {k}") for k in range(num_options)]
    if num_primitives:
        handles.append(Patch(color=_PRIMITIVE_COLOUR, label="a primitive action"))
    return handles


def task_slots(slot_tasks: list[str]) -> dict[str, int]:
    """Each task of ``slot_tasks`` and the first slot that holds it, in slot order."""
    first: dict[str, int] = {}
    for slot, task in enumerate(slot_tasks):
        first.setdefault(task, slot)
    return first


def plot_option_map(env, path: Path, choose: ChooseOptions, num_options: int, num_primitives: int = 0,
                    name: str = "option") -> Path | None:
    """One panel per task of a grid env (two rows: without and with the passenger): each walkable cell coloured by
    the option ``choose`` says the task's master picks there, ``x`` where that option terminates with probability
    > 0.5; the map's named locations drawn on it. None (nothing written) for envs without a grid."""
    grid = env.grid_observations() if hasattr(env, "grid_observations") else None
    if grid is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cells, obs, shape, walls = grid  # cells: [(x, y)], obs: [C, obs_dim] (passenger in taxi / not), walls mask
    panels = task_slots(list(env.slot_tasks))
    slots = list(panels.values())
    locations = env.grid_locations() if hasattr(env, "grid_locations") else {}
    obs_t = torch.as_tensor(obs, dtype=torch.float32, device="cpu")  # a chooser moves it to its networks
    fig, axes = plt.subplots(2, len(slots), figsize=(max(2.2 * len(slots), 6.0), 4.6), squeeze=False)
    has_terminations = False
    for col, slot in enumerate(slots):
        choice, p_term = choose(obs_t, slot)
        has_terminations = p_term is not None
        for row, passenger in enumerate((False, True)):
            ax = axes[row, col]
            img = np.ones((*shape, 3))
            img[walls] = 0.2
            sel = [i for i, c in enumerate(cells) if c[2] == passenger]
            for i in sel:
                x, y, _ = cells[i]
                img[y, x] = option_colour(num_options, int(choice[i]))
                if p_term is not None and p_term[i] > 0.5:
                    ax.plot(x, y, "kx", ms=6)
            ax.imshow(img, interpolation="nearest")
            for label, (x, y) in locations.items():
                ax.text(x, y, label, ha="center", va="center", fontsize=7, fontweight="bold")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{env.slot_tasks[slot]}", fontsize=8)
            if col == 0:
                ax.set_ylabel("passenger in" if passenger else "no passenger", fontsize=8)
    title = f"one panel per task; colour: {name} picked by the master"
    fig.suptitle(title + ("; x: its termination probability > 0.5" if has_terminations else ""), fontsize=9)
    legend = option_legend(num_options, num_primitives, name)
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
