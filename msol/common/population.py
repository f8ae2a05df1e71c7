"""Populations: ``S`` independent members of one configuration trained in one process (``population=S``).

Member ``k`` has seed ``seed + k``, its own parameters (a member dimension in every layer, ``msol.soft_options.networks``), its
own optimiser state, envs and ``torch.Generator``, and its own run directory, written exactly as a single run of
its seed would write it. Nothing is shared: each member's loss is its own mean (``msol.soft_options.losses``), its gradient
norm is clipped on its own (:func:`clip_grad_norm_per_member`), and the element-wise optimisers (RMSprop, Adam)
then step every member as its own optimiser would. A single run is a population of one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, open_dict

from msol.common.envs_adapter import MultitaskEnv, StepOut

POPULATION_FILE = "population.json"  # in every member's run directory: where the other members are


def member_seeds(cfg: DictConfig) -> list[int]:
    """``seed, seed + 1, …`` for ``population`` members."""
    return [int(cfg.seed) + k for k in range(int(cfg.get("population", 1)))]


def member_config(cfg: DictConfig, seed: int) -> DictConfig:
    """The config a member's run directory records: the population's, with the member's own seed."""
    member = cfg.copy()
    with open_dict(member):
        member.seed = seed
    return member


def member_run_dirs(run_dir: Path, seed: int, seeds: Sequence[int]) -> list[Path]:
    """Run directories of the members: a directory named like a single run of seed ``seed`` (``…s<seed>``, as the
    default and sweep directories are) gets siblings named for the other seeds; any other gets ``s<seed>``
    subdirectories. A population of one keeps ``run_dir``."""
    if len(seeds) == 1:
        return [run_dir]
    match = re.fullmatch(rf"(.*s){seed}", run_dir.name)
    if match:
        return [run_dir.with_name(f"{match.group(1)}{s}") for s in seeds]
    return [run_dir / f"s{s}" for s in seeds]


def write_population_file(run_dirs: Sequence[Path], seeds: Sequence[int]) -> None:
    """Each member's directory names the others (relative paths), so ``resume=<any member>`` finds them all."""
    for run_dir in run_dirs:
        entry = {"seeds": list(seeds),
                 "run_dirs": [os.path.relpath(other.resolve(), run_dir.resolve()) for other in run_dirs]}
        (run_dir / POPULATION_FILE).write_text(json.dumps(entry, indent=2) + "\n")


def population_members(run_dir: Path) -> dict[int, Path]:
    """Seed -> run directory of every member of the population ``run_dir`` belongs to (``{}``: a single run).
    Read from ``population.json``: a member that has not started yet has no ``config.yaml`` to read its seed from."""
    path = Path(run_dir) / POPULATION_FILE
    if not path.exists():
        return {}
    entry = json.loads(path.read_text())
    return {int(seed): (Path(run_dir) / rel).resolve() for seed, rel in zip(entry["seeds"], entry["run_dirs"],
                                                                           strict=True)}


def population_dirs(run_dir: Path) -> list[Path]:
    """The run directories of the population ``run_dir`` belongs to (``[run_dir]`` for a single run)."""
    return list(population_members(run_dir).values()) or [Path(run_dir)]


class PopulationEnv:
    """The members' ``MultitaskEnv``s seen as one batch: member ``k``'s envs are rows ``k·n … (k+1)·n − 1``.

    Every member keeps its own env (own seeds, own task draws), so a member sees exactly the episodes a single run
    of its seed sees; slot indices are the member's own (every member has the same slots).
    """

    def __init__(self, members: Sequence[MultitaskEnv]) -> None:
        self.members = list(members)
        first = self.members[0]
        self.per_member = first.num_envs
        self.num_envs = self.per_member * len(self.members)
        self.slot_of_env = np.tile(first.slot_of_env, len(self.members))
        self.obs_dim, self.action_dim = first.obs_dim, first.action_dim
        self.continuous, self.action_shape = first.continuous, first.action_shape
        self.tasks = first.tasks

    def member_of(self, env_index: int) -> int:
        return env_index // self.per_member

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        return np.concatenate([env.reset(seed=s) for env, s in zip(self.members, seeds, strict=True)])

    def step(self, actions: np.ndarray) -> StepOut:
        if len(self.members) == 1:
            return self.members[0].step(actions)
        n = self.per_member
        outs = [env.step(actions[k * n:(k + 1) * n]) for k, env in enumerate(self.members)]
        final = None
        if any(o.final_obs is not None for o in outs):
            final = np.concatenate([o.final_obs if o.final_obs is not None else np.zeros_like(o.obs) for o in outs])
        return StepOut(np.concatenate([o.obs for o in outs]), np.concatenate([o.reward for o in outs]),
                       np.concatenate([o.terminated for o in outs]), np.concatenate([o.truncated for o in outs]),
                       final, [(k * n + i, r) for k, o in enumerate(outs) for i, r in o.episode_returns])

    def assign_task(self, member: int, slot: int, task: str) -> tuple[np.ndarray, np.ndarray]:
        """Give member ``member``'s ``slot`` a new task; returns (their rows in the batch, new observations)."""
        idx, obs = self.members[member].assign_task(slot, task)
        return idx + member * self.per_member, obs

    def close(self) -> None:
        for env in self.members:
            env.close()


class MemberRecords:
    """What a population learner gathers per member between two log rows: the (slot, return) of finished episodes
    and the statistics of each update. ``pending``/``restore_pending`` are the protocol's access to them (a
    checkpoint written between two rows carries them, so a resumed run logs the same rows)."""

    def __init__(self, members: int) -> None:
        self.episodes: list[list[tuple[int, float]]] = [[] for _ in range(members)]
        self.update_stats: list[list[dict[str, float]]] = [[] for _ in range(members)]

    def clear_records(self) -> None:
        self.episodes = [[] for _ in self.episodes]
        self.update_stats = [[] for _ in self.update_stats]

    def pending(self, member: int) -> dict[str, list]:
        return {"episodes": list(self.episodes[member]), "update_stats": list(self.update_stats[member])}

    def restore_pending(self, member: int, pending: dict[str, list]) -> None:
        self.episodes[member] = [tuple(e) for e in pending.get("episodes", [])]
        self.update_stats[member] = list(pending.get("update_stats", []))


def pad_to_member_blocks(rows: torch.Tensor, per_member: int, members: int, *values: torch.Tensor
                         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``values`` of some rows of a batch (sorted env indices ``rows``, e.g. the envs whose episode was cut) laid out
    as ``members`` equal blocks, zero-padded, since the layers need equal member blocks: ``(positions of the rows in
    the padded batch, padded values)``. The padding rows are computed and dropped (``out[positions]``)."""
    member = rows // per_member
    counts = torch.bincount(member, minlength=members)
    width = int(counts.max())
    starts = torch.cumsum(counts, 0) - counts
    where = member * width + torch.arange(rows.shape[0], device=rows.device) - starts[member]
    padded = []
    for value in values:
        out = value.new_zeros(members * width, *value.shape[1:])
        out[where] = value
        padded.append(out)
    return where, padded


def member_uniforms(generators: Sequence[torch.Generator | None], rows: int, columns: int,
                    dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniforms ``[rows, columns]`` for ``rows`` in equal member-major blocks: member ``k``'s block from
    ``generators[k]``, so a member draws exactly what a single run of its seed draws (drawn on the CPU, where the
    generators are, then moved to ``device``)."""
    per_member = rows // len(generators)
    return torch.cat([torch.rand(per_member, columns, generator=g, dtype=dtype, device="cpu")
                      for g in generators]).to(device)


def categorical_draw(log_probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw from each row's categorical: the first index whose cumulative probability exceeds ``u``
    (categories of probability 0, e.g. forbidden primitives, are never drawn: ``u`` is scaled by the total so
    rounding cannot reach past it). With :func:`member_uniforms` every member samples from its own stream;
    ``torch.distributions.Categorical.sample`` can only use the global one."""
    cdf = log_probs.exp().cumsum(-1)
    return (cdf <= u.unsqueeze(-1) * cdf[..., -1:]).sum(-1)


def clip_grad_norm_per_member(params: Sequence[torch.nn.Parameter], max_norm: float, members: int
                              ) -> torch.Tensor:
    """``clip_grad_norm_`` for every member on its own (dim 0 of every parameter is the member); returns the
    members' gradient norms before clipping, ``[members]``."""
    grads = [p.grad for p in params if p.grad is not None]
    squares = torch.stack([g.pow(2).reshape(members, -1).sum(1) for g in grads]).sum(0)
    norms = squares.sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
    return norms


def optimizer_member_state(optimizer: torch.optim.Optimizer, member: int) -> dict[str, Any]:
    """Member ``member``'s slice of ``optimizer.state_dict()``: the state a single run's optimiser would hold."""
    state = optimizer.state_dict()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    sliced = {}
    for index, values in state["state"].items():
        shape = params[index].shape
        sliced[index] = {k: v[member:member + 1].clone() if _per_member(v, shape) else v for k, v in values.items()}
    return {"state": sliced, "param_groups": state["param_groups"]}


def load_optimizer_members(optimizer: torch.optim.Optimizer, states: Sequence[dict[str, Any]]) -> None:
    """Stack the members' optimiser states (:func:`optimizer_member_state`) into ``optimizer``."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    stacked = {}
    for index in states[0]["state"]:
        shape = params[index].shape
        stacked[index] = {k: torch.cat([s["state"][index][k] for s in states]) if _per_member(v, (1, *shape[1:]))
                          else v for k, v in states[0]["state"][index].items()}
    optimizer.load_state_dict({"state": stacked, "param_groups": states[0]["param_groups"]})


def _per_member(value: Any, param_shape: tuple[int, ...]) -> bool:
    """Whether an optimiser state entry holds one slice per member: a moment (the parameter's shape) or a per-member
    step count (:class:`msol.common.member_adam.MemberAdam`, the parameter's member dim); a shared scalar step does not."""
    return torch.is_tensor(value) and value.dim() > 0 and value.shape in (tuple(param_shape),
                                                                          tuple(param_shape[:1]))


def consistent_checkpoints(run_dirs: Sequence[Path]) -> list[str]:
    """Which checkpoint (``latest`` or ``previous``) each member resumes from so that all continue from the same
    step. Members write their checkpoints one after another, each moving its ``latest.pt`` to ``previous.pt`` first;
    a kill between two members' writes leaves some members one checkpoint ahead, and every member then still holds
    the older step."""
    from msol.common.checkpoint import CheckpointError, load_checked
    from msol.common.run import RunDirError

    if len(run_dirs) == 1:
        return ["latest"]
    held: list[dict[str, tuple[int, int]]] = []
    for run_dir in run_dirs:
        points = {}
        for name in ("latest", "previous"):
            path = Path(run_dir) / "checkpoints" / f"{name}.pt"
            if path.exists():
                try:
                    state = load_checked(path)
                except CheckpointError:
                    if name == "latest":
                        raise
                    continue
                points[name] = (int(state["phase_index"]), int(state["frames"]))
        if not points:
            raise RunDirError(f"resume: no checkpoint in {run_dir}/checkpoints; nothing to resume")
        held.append(points)
    target = min(max(points.values()) for points in held)
    chosen = []
    for run_dir, points in zip(run_dirs, held, strict=True):
        name = next((n for n, point in points.items() if point == target), None)
        if name is None:
            raise RunDirError(f"resume: {run_dir} holds no checkpoint at phase {target[0]}, {target[1]:,} frames per "
                              "task, where the other members of its population are; resume its members one by one "
                              "with population=1")
        chosen.append(name)
    return chosen
