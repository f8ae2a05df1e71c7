"""Pictures of what the options do, drawn at the end of each phase (paper Fig. 3 for Taxi).

For grid envs that expose ``grid_observations()`` (the Taxi family), one panel per task: on each walkable cell the
option the master of that task's (first) slot picks there, and where that option is likely to terminate; the
pickup/drop-off letters are drawn on the map (msol/common/option_map.py, also drawn for MLSH's sub-policies
and Option-Critic's options). On Moving Bandits: the path of each option followed alone. Policies without options
(DISTRAL, flat learners) get no picture.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from msol.common.option_map import option_colour, option_legend, plot_option_map, task_slots
from msol.envs.registry import option_probe
from msol.soft_options.networks import HierarchicalPolicy


@torch.no_grad()
def plot_options(policy: HierarchicalPolicy, env, path: Path, posteriors: bool = False) -> Path | None:
    """Draw the option picture for ``policy`` on ``env`` into ``path`` (PNG); returns the path, or None when the
    policy has no options to show. ``posteriors``: on Moving Bandits, each task's posterior options (after
    transfer) rather than the shared priors."""
    if policy.num_options < 2 and not policy.num_primitives:
        return None
    encoder_inputs = policy.encoder.trunk[0].in_features

    def choose(obs: torch.Tensor, slot: int) -> tuple[np.ndarray, np.ndarray]:
        obs = obs.to(policy.device)
        pad = encoder_inputs - obs.shape[1]
        if pad > 0:  # the policy also reads the previous action (DISTRAL(+action)): none, all zeros
            obs = torch.cat([obs, obs.new_zeros(obs.shape[0], pad)], dim=1)
        s = torch.full((obs.shape[0],), slot, dtype=torch.long, device=obs.device)
        trunk = policy.trunk(obs)
        choice = policy.master_logits(trunk, s).argmax(-1)
        # termination probability of the option the master would pick: where does that option end?
        f, fp = policy.option_features(trunk, choice)
        term, _ = policy.termination_logits(f, fp, s)
        return choice.cpu().numpy(), term.softmax(-1)[:, 1].cpu().numpy()

    drawn = plot_option_map(env, path, choose, policy.num_options, policy.num_primitives)
    if drawn is None and option_probe(env.env_id) is not None and not policy.continuous:  # no grid: option paths
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return _plot_moving_bandits(policy, Path(path), task_slots(list(env.slot_tasks)) if posteriors else None)
    return drawn


@torch.no_grad()
def _plot_moving_bandits(policy: HierarchicalPolicy, path: Path, slots: dict[str, int] | None) -> Path:
    """Each option followed alone from the start, on six random goal layouts: the shared priors (``slots`` None),
    or one row per task with that task's posterior options."""
    from msol.soft_options.option_probe import moving_bandits_option_paths, same_goal_fraction

    rows = {"priors": None} if slots is None else {f"{task} (posteriors)": s for task, s in slots.items()}
    fig, axes = plt.subplots(len(rows), 6, figsize=(13, 2.5 * len(rows)), squeeze=False)
    for r, (label, slot) in enumerate(rows.items()):
        paths, goals = moving_bandits_option_paths(policy, layouts=6, seed=1, slot=slot)
        for k, ax in enumerate(axes[r]):
            for g, marker in ((0, "o"), (1, "s")):
                ax.add_patch(plt.Circle(goals[k, g], 50, color="0.85"))
                ax.plot(*goals[k, g], marker, color="k", ms=5)
            for o in range(paths.shape[0]):
                ax.plot(paths[o, k, :, 0], paths[o, k, :, 1], "-", color=option_colour(policy.num_options, o), lw=1.5)
            ax.set_xlim(0, 400)
            ax.set_ylim(0, 400)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.legend(handles=option_legend(policy.num_options, policy.num_primitives) + [plt.Line2D([], [], marker="o", ls="", color="k", label="goal 0"),
                                          plt.Line2D([], [], marker="s", ls="", color="k", label="goal 1")],
               loc="lower center", ncol=policy.num_options + 2, fontsize=7, frameon=False)
    fig.suptitle(f"each option alone from the start (greedy); the priors' options go to the same goal in "
                 f"{same_goal_fraction(policy):.0%} of layouts", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
