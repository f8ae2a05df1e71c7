"""Pictures of what the options do, drawn at the end of each phase (paper Fig. 3 for Taxi).

For grid envs that expose ``grid_observations()`` (the Taxi family), one panel per task: on each walkable cell the
option the master of that task's (first) slot picks there, and where that option is likely to terminate; the
pickup/drop-off letters are drawn on the map (:func:`plot_option_map`, also drawn for MLSH's sub-policies and
Option-Critic's options). On Moving Bandits: the path of each option followed alone. Policies without options
(DISTRAL, flat learners) get no picture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from msol.networks import HierarchicalPolicy  # noqa: E402

_OPTION_COLOURS = plt.get_cmap("tab10")
_PRIMITIVE_COLOUR = (0.55, 0.55, 0.55)


# (observations of every map cell [C, obs_dim], task slot) -> (option the master picks on each cell [C], probability
# that this option terminates there [C], or None for options without learned terminations)
ChooseOptions = Callable[[torch.Tensor, int], tuple[np.ndarray, np.ndarray | None]]


def _colour(num_options: int, option: int) -> tuple[float, float, float]:
    return _OPTION_COLOURS(option)[:3] if option < num_options else _PRIMITIVE_COLOUR


def _legend(num_options: int, num_primitives: int = 0, name: str = "option") -> list[Patch]:
    handles = [Patch(color=_colour(num_options, k), label=f"{name} {k}") for k in range(num_options)]
    if num_primitives:
        handles.append(Patch(color=_PRIMITIVE_COLOUR, label="a primitive action"))
    return handles


def task_slots(slot_tasks: list[str]) -> dict[str, int]:
    """Each task of ``slot_tasks`` and the first slot that holds it, in slot order."""
    first: dict[str, int] = {}
    for slot, task in enumerate(slot_tasks):
        first.setdefault(task, slot)
    return first


@torch.no_grad()
def plot_options(policy: HierarchicalPolicy, env, path: Path, posteriors: bool = False) -> Path | None:
    """Draw the option picture for ``policy`` on ``env`` into ``path`` (PNG); returns the path, or None when the
    policy has no options to show. ``posteriors``: on Moving Bandits, each task's posterior options (after
    transfer) rather than the shared priors."""
    if policy.num_options < 2 and not policy.num_primitives:
        return None
    encoder_inputs = policy.encoder.trunk[0].in_features

    def choose(obs: torch.Tensor, slot: int) -> tuple[np.ndarray, np.ndarray]:
        pad = encoder_inputs - obs.shape[1]
        if pad > 0:  # the policy also reads the previous action (DISTRAL(+action)): none, all zeros
            obs = torch.cat([obs, torch.zeros(obs.shape[0], pad)], dim=1)
        s = torch.full((obs.shape[0],), slot, dtype=torch.long)
        trunk = policy.trunk(obs)
        choice = policy.master_logits(trunk, s).argmax(-1)
        # termination probability of the option the master would pick: where does that option end?
        f, fp = policy.option_features(trunk, choice)
        term, _ = policy.termination_logits(f, fp, s)
        return choice.numpy(), term.softmax(-1)[:, 1].numpy()

    drawn = plot_option_map(env, path, choose, policy.num_options, policy.num_primitives)
    if drawn is None and "goal0" in env.tasks and not policy.continuous:  # Moving Bandits: no grid, option paths
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _plot_moving_bandits(policy, Path(path), task_slots(list(env.slot_tasks)) if posteriors else None)
    return drawn


@torch.no_grad()
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
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
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
                img[y, x] = _colour(num_options, int(choice[i]))
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
    legend = _legend(num_options, num_primitives, name)
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plot_moving_bandits(policy: HierarchicalPolicy, path: Path, slots: dict[str, int] | None) -> Path:
    """Each option followed alone from the start, on six random goal layouts: the shared priors (``slots`` None),
    or one row per task with that task's posterior options."""
    from msol.option_probe import moving_bandits_option_paths, same_goal_fraction

    rows = {"priors": None} if slots is None else {f"{task} (posteriors)": s for task, s in slots.items()}
    fig, axes = plt.subplots(len(rows), 6, figsize=(13, 2.5 * len(rows)), squeeze=False)
    for r, (label, slot) in enumerate(rows.items()):
        paths, goals = moving_bandits_option_paths(policy, layouts=6, seed=1, slot=slot)
        for k, ax in enumerate(axes[r]):
            for g, marker in ((0, "o"), (1, "s")):
                ax.add_patch(plt.Circle(goals[k, g], 50, color="0.85"))
                ax.plot(*goals[k, g], marker, color="k", ms=5)
            for o in range(paths.shape[0]):
                ax.plot(paths[o, k, :, 0], paths[o, k, :, 1], "-", color=_OPTION_COLOURS(o), lw=1.5)
            ax.set_xlim(0, 400)
            ax.set_ylim(0, 400)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.legend(handles=_legend(policy.num_options, policy.num_primitives) + [plt.Line2D([], [], marker="o", ls="", color="k", label="goal 0"),
                                          plt.Line2D([], [], marker="s", ls="", color="k", label="goal 1")],
               loc="lower center", ncol=policy.num_options + 2, fontsize=7, frameon=False)
    fig.suptitle(f"each option alone from the start (greedy); the priors' options go to the same goal in "
                 f"{same_goal_fraction(policy):.0%} of layouts", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
