"""Pictures of what the options do, drawn at the end of each phase (paper Fig. 3 for Taxi).

For grid envs that expose ``grid_observations()`` (the Taxi family), each walkable cell shows which option the
master of each task slot picks there and how likely the previous option is to terminate; other envs get a bar
chart of option usage per task slot from a short probe batch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from msol.networks import HierarchicalPolicy  # noqa: E402

_OPTION_COLOURS = plt.get_cmap("tab10")


@torch.no_grad()
def plot_options(policy: HierarchicalPolicy, env, path: Path) -> Path | None:
    """Draw the option picture for ``policy`` on ``env`` into ``path`` (PNG); returns the path."""
    grid = env.grid_observations() if hasattr(env, "grid_observations") else None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if grid is None:
        if "goal0" in env.tasks and not policy.continuous:  # Moving Bandits
            return _plot_moving_bandits(policy, path)
        return None
    cells, obs, shape, walls = grid  # cells: [(x, y)], obs: [C, obs_dim] (passenger in taxi / not), walls mask
    slots = list(range(min(policy.num_slots, 12)))
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    pad = policy.encoder.trunk[0].in_features - obs_t.shape[1]
    if pad > 0:  # the policy also reads the previous action (DISTRAL(+action)): none, all zeros
        obs_t = torch.cat([obs_t, torch.zeros(obs_t.shape[0], pad)], dim=1)
    fig, axes = plt.subplots(2, len(slots), figsize=(2.2 * len(slots), 4.6), squeeze=False)
    for col, slot in enumerate(slots):
        s = torch.full((obs_t.shape[0],), slot, dtype=torch.long)
        trunk = policy.trunk(obs_t)
        choice = policy.master_logits(trunk, s).argmax(-1).numpy()
        # termination probability of the option the master would pick: where does that option end?
        f, fp = policy.option_features(trunk, torch.as_tensor(choice))
        term, _ = policy.termination_logits(f, fp, s)
        p_term = term.softmax(-1)[:, 1].numpy()
        for row, passenger in enumerate((False, True)):
            ax = axes[row, col]
            img = np.ones((*shape, 3))
            img[walls] = 0.2
            sel = [i for i, c in enumerate(cells) if c[2] == passenger]
            for i in sel:
                x, y, _ = cells[i]
                img[y, x] = _OPTION_COLOURS(int(choice[i]))[:3]
                if p_term[i] > 0.5:
                    ax.plot(x, y, "kx", ms=6)
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{env.slot_tasks[slot]}", fontsize=8)
            if col == 0:
                ax.set_ylabel("passenger in" if passenger else "no passenger", fontsize=8)
    fig.suptitle("colour: option picked by the master; x: its termination probability > 0.5", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _plot_moving_bandits(policy: HierarchicalPolicy, path: Path) -> Path:
    """Each option followed alone from the start, on six random goal layouts."""
    from msol.option_probe import moving_bandits_option_paths, same_goal_fraction

    paths, goals = moving_bandits_option_paths(policy, layouts=6, seed=1)
    fig, axes = plt.subplots(1, 6, figsize=(13, 2.5))
    for k, ax in enumerate(axes):
        for g, marker in ((0, "o"), (1, "s")):
            ax.add_patch(plt.Circle(goals[k, g], 50, color="0.85"))
            ax.plot(*goals[k, g], marker, color="k", ms=5)
        for o in range(paths.shape[0]):
            ax.plot(paths[o, k, :, 0], paths[o, k, :, 1], "-", color=_OPTION_COLOURS(o), lw=1.5, label=f"option {o}")
        ax.set_xlim(0, 400)
        ax.set_ylim(0, 400)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(fontsize=6, loc="upper left")
    fig.suptitle(f"each option alone from the start (greedy prior); all options to the same goal in "
                 f"{same_goal_fraction(policy):.0%} of layouts", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
