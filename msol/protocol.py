"""The protocol loop (option learning → transfer) shared by MSOL and the baselines that follow its protocol.

``run_protocol`` builds the phases (same task pools, slots and per-task frame budgets for every algorithm), then
for each phase asks the algorithm for a :class:`PhaseLearner`, iterates it, writes ``phase`` rows every log
interval and ``<phase>/eval`` rows every eval interval (``frames_per_task`` and per-task ``return/<task>``
columns), checkpoints by wall clock and at every phase end, and resumes mid-phase bit for bit. MSOL and its special
cases (``msol.trainer``), MLSH and Option-Critic each supply only their learner.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from msol.config_check import SLOT_TASK_DRAWS
from msol.envs_adapter import MultitaskEnv, make_env, resolve_tasks
from msol.interrupt import Interrupted, StopSignals
from msol.run import Run


@dataclass
class PhaseSpec:
    """What one phase of the protocol runs on."""

    name: str                 # "options", "transfer", or "scratch" (a fresh learner on the transfer tasks)
    tasks: list[str]          # task pool the slots draw from
    mode: str                 # start distribution of the training envs
    num_slots: int
    frames_per_task: int
    slot_reset_frames: int | None  # regular task-slot resets (option learning only)
    slot_tasks: list[str]     # initial task of each slot


def build_phases(cfg: DictConfig, all_tasks: list[str]) -> list[PhaseSpec]:
    """The option-learning and transfer phases of ``cfg`` (``algo.phases`` picks which run)."""
    a, e, scale = cfg.algo, cfg.env, float(cfg.budget_scale)
    phases = []
    for name in a.phases:
        if name == "options":
            tasks = resolve_tasks(e.train_tasks, all_tasks)
            n = int(a.num_slots)
            slot_tasks = _spread_tasks(tasks, n)
            phases.append(PhaseSpec("options", tasks, str(e.train_mode), n,
                                    max(1, int(a.option_frames_per_task * scale)),
                                    max(1, int(a.slot_reset_frames_per_task * scale)), slot_tasks))
        elif name in ("transfer", "scratch"):
            tasks = resolve_tasks(e.transfer_tasks, all_tasks)
            n = int(OmegaConf.select(cfg, "env.hparams.transfer_slots", default=None) or len(tasks))
            phases.append(PhaseSpec(name, tasks, str(e.transfer_mode), n,
                                    max(1, int(a.transfer_frames_per_task * scale)), None,
                                    _spread_tasks(tasks, n)))
        else:
            raise ValueError(f"algo.phases: unknown phase {name!r}; valid: options, transfer, scratch")
    return phases


def _spread_tasks(tasks: list[str], n: int) -> list[str]:
    """Tasks assigned to slots round-robin (authors' code): every task holds ``n / len(tasks)`` slots, ±1."""
    return [tasks[i % len(tasks)] for i in range(n)]


def draw_slot_task(tasks: list[str], slot_tasks: list[str], slot: int, rule: str) -> str:
    """The task of a slot after its regular reset.

    ``keep`` (MSOL's default): the slot keeps its task (authors' ``reset_task``: "Constraints remain the same"), so
    every task always has the same number of slots. ``uniform``: any task, uniformly (one ``torch.randint``, so runs
    stay reproducible on resume) — MLSH's task draw; for MSOL it left 3–7 of Taxi's 12 tasks in no slot at any time
    and lost a run three tasks (docs/benchmarks.md).
    """
    if rule == "keep":
        return slot_tasks[slot]
    if rule == "uniform":
        return tasks[int(torch.randint(len(tasks), (1,)))]
    raise ValueError(f"algo.slot_task_draw={rule!r}; valid: {', '.join(SLOT_TASK_DRAWS)}")


class PhaseLearner(Protocol):
    """One phase of one algorithm on a batched multitask env."""

    model: torch.nn.Module
    frames: int  # frames per task done in this phase
    episodes: list[tuple[int, float]]     # (slot, return) of the episodes finished since the last log row
    update_stats: list[dict[str, float]]  # statistics of the updates since the last log row

    def start(self, seed: int) -> None: ...
    def iterate(self) -> None: ...  # collect experience and update; advances ``frames``
    def pop_log_row(self) -> dict[str, float]: ...
    def evaluate(self, env: MultitaskEnv, seed: int) -> dict[str, float]: ...
    def finish_phase(self, run: Run) -> dict[str, float]: ...  # end-of-phase pictures/probes -> summary entries
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# (cfg, phase, env, learner of the previous phase or None when resuming straight into this one) -> learner
MakeLearner = Callable[[DictConfig, PhaseSpec, MultitaskEnv, "PhaseLearner | None"], PhaseLearner]


def task_names(cfg: DictConfig) -> list[str]:
    """Every task of the configured env family, in the env's own order (task ids index this list)."""
    probe = make_env(cfg, ["__probe__"], mode=str(cfg.env.train_mode), envs_per_slot=1, seed=cfg.seed)
    tasks = list(probe.tasks)
    probe.close()
    return tasks


def protocol_phases(cfg: DictConfig) -> list[PhaseSpec]:
    """MSOL's phases for ``cfg`` (``algo.phases``), without MSOL's regular task-slot resets.

    ``build_phases`` also schedules MSOL's slot resets; MLSH has its own task schedule and Option-Critic none, so
    their configs carry no ``slot_reset_frames_per_task`` and the field is cleared.
    """
    patched = cfg.copy()
    with open_dict(patched):
        patched.algo.slot_reset_frames_per_task = 1
    phases = build_phases(patched, task_names(cfg))
    for phase in phases:
        phase.slot_reset_frames = None
    return phases


def episode_row(episodes: list[tuple[int, float]], slot_tasks: list[str]) -> dict[str, float]:
    """``return/mean``, ``episodes`` and ``return/<task>`` of the (slot, return) pairs finished since the last row."""
    row: dict[str, float] = {}
    returns = [r for _, r in episodes]
    row["return/mean"] = float(np.mean(returns)) if returns else float("nan")
    row["episodes"] = len(returns)
    by_task: dict[str, list[float]] = {}
    for slot, ret in episodes:
        by_task.setdefault(slot_tasks[slot], []).append(ret)
    for task, rets in sorted(by_task.items()):
        row[f"return/{task}"] = float(np.mean(rets))
    return row


def mean_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    """Key-wise mean of update statistics (keys missing from some updates average over those that have them)."""
    keys = dict.fromkeys(k for s in stats for k in s)
    return {k: float(np.mean([s[k] for s in stats if k in s])) for k in keys}


@torch.no_grad()
def evaluate_episodes(
    env: MultitaskEnv, *, seed: int, slot_tasks: list[str], act: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> dict[str, float]:
    """One episode in every env of ``env`` (slots set to ``slot_tasks``); mean returns overall and per task.

    ``act(obs, first) -> actions`` is the agent's step for all envs at once; it keeps its own per-env state
    (current option, macro-step counter ...) and must start fresh where ``first`` is 1.
    """
    env.set_slot_tasks(slot_tasks)
    obs = torch.as_tensor(env.reset(seed=seed), dtype=torch.float32)
    n = env.num_envs
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    first = torch.ones(n)
    while not done.all():
        out = env.step(act(obs, first).numpy())
        returns += np.where(done, 0.0, out.reward)
        lengths += ~done
        done |= out.terminated | out.truncated
        obs = torch.as_tensor(out.obs, dtype=torch.float32)
        first = torch.as_tensor(out.terminated | out.truncated, dtype=torch.float32)
    row = {"return/mean": float(returns.mean()), "episode_length": float(lengths.mean())}
    tasks = np.asarray([env.slot_tasks[s] for s in env.slot_of_env])
    for task in sorted(set(tasks.tolist())):
        row[f"return/{task}"] = float(returns[tasks == task].mean())
    return row


def log_intervals(cfg: DictConfig, spec: PhaseSpec) -> tuple[int, int]:
    """(log, eval) intervals in frames per task: the configured ones, shortened so that a short (reduced-budget)
    phase still gets at least 50 log rows and 10 evaluations."""
    log_every = max(1, min(int(cfg.logger.log_interval_frames_per_task), spec.frames_per_task // 50))
    eval_every = max(1, min(int(cfg.eval.interval_frames_per_task), spec.frames_per_task // 10))
    return log_every, eval_every


def run_protocol(cfg: DictConfig, run: Run, make_learner: MakeLearner, phases: list[PhaseSpec] | None = None
                 ) -> dict[str, float]:
    """Every phase of ``cfg`` in order, with logging, evaluation, checkpoints and exact resume.

    ``phases`` defaults to :func:`protocol_phases` (no regular task-slot resets); MSOL passes its own.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    phases = protocol_phases(cfg) if phases is None else phases
    resume = run.load_checkpoint()
    start_phase = int(resume["phase_index"]) if resume else 0
    global_offset = sum(p.frames_per_task for p in phases[:start_phase])
    done_in_phase = int(resume["frames"]) if resume else 0
    run.start_progress(sum(p.frames_per_task for p in phases), initial=global_offset + done_in_phase,
                       desc=f"{cfg.algo.name}/{cfg.env.name}")
    # The summary is part of the state: a run resumed in transfer must still report its option-learning results.
    summary: dict[str, float] = dict(resume.get("summary", {})) if resume else {}
    with StopSignals() as stop:
        return _run_phases(cfg, run, make_learner, phases, resume, start_phase, global_offset, summary, stop)


def _run_phases(cfg: DictConfig, run: Run, make_learner: MakeLearner, phases: list[PhaseSpec],
                resume: dict[str, Any] | None, start_phase: int, global_offset: int, summary: dict[str, float],
                stop: StopSignals) -> dict[str, float]:
    learner: PhaseLearner | None = None
    last_ckpt = -float("inf")  # the first checkpoint comes with the first log row: every run is resumable early
    for index, spec in enumerate(phases):
        if index < start_phase:
            continue
        transfer = spec.name != "options"  # env.transfer_id/transfer_kwargs, e.g. Taxi with moved locations
        env = make_env(cfg, spec.slot_tasks, mode=spec.mode, envs_per_slot=int(cfg.algo.envs_per_slot),
                       seed=cfg.seed * 1000 + index, transfer=transfer)
        eval_env = make_env(cfg, spec.slot_tasks, mode=str(cfg.env.eval_mode),
                            envs_per_slot=int(cfg.eval.episodes_per_slot), seed=cfg.seed * 1000 + 500 + index,
                            transfer=transfer)
        learner = make_learner(cfg, spec, env, learner)
        if resume and index == start_phase:
            learner.load_state_dict(resume["learner"])
            # Statistics since the last row (a checkpoint written on a signal falls between rows).
            learner.episodes = [tuple(e) for e in resume.get("pending", {}).get("episodes", [])]
            learner.update_stats = list(resume.get("pending", {}).get("update_stats", []))
            # After building the learner: its fresh initialisation draws from the RNG the checkpoint restores.
            torch.set_rng_state(resume["torch_rng"])
            resume = None
        else:
            learner.start(seed=cfg.seed * 1000 + index)
        log_every, eval_every = log_intervals(cfg, spec)
        t0, f0 = time.time(), learner.frames
        while learner.frames < spec.frames_per_task:
            before = learner.frames
            learner.iterate()
            after = learner.frames
            run.progress(after - before, phase=spec.name)
            finished = after >= spec.frames_per_task
            if after // eval_every > before // eval_every or finished:
                eval_row = learner.evaluate(eval_env, seed=cfg.seed * 7 + after // eval_every + 100000 * index)
                eval_row["frames_per_task"] = after
                run.log(global_offset + after, eval_row, phase=f"{spec.name}/eval")
                summary.update({f"{spec.name}/eval/{k}": v for k, v in eval_row.items()})
            if after // log_every > before // log_every or finished:
                row = learner.pop_log_row()
                row["frames_per_task"] = after
                row["fps"] = (after - f0) * spec.num_slots / max(time.time() - t0, 1e-9)
                run.log(global_offset + after, row, phase=spec.name)
                summary.update({f"{spec.name}/{k}": v for k, v in row.items() if k != "fps"})
                run.progress(0, ret=row["return/mean"], env_frames_per_s=int(row["fps"]))
                # Timed checkpoints come right after a row, when no statistics are pending.
                if time.time() - last_ckpt >= float(cfg.checkpoint_interval_s) and not finished:
                    _checkpoint(run, index, learner, summary)
                    last_ckpt = time.time()
            if stop.requested and not finished:
                _checkpoint(run, index, learner, summary)
                raise Interrupted(stop.signum, f"interrupted by {signal.Signals(stop.signum).name} after the update "
                                  f"at {after:,} frames per task of phase {spec.name}; checkpoint written; "
                                  f"continue with: python -m msol.train resume={run.dir}")
        summary.update(learner.finish_phase(run))
        _checkpoint(run, index, learner, summary)  # phase end: always
        # <phase>.pt: the phase's end in full, what ``init_from=`` starts another run from (``model`` for readers).
        _checkpoint(run, index, learner, summary, name=spec.name, model=learner.model.state_dict())
        global_offset += spec.frames_per_task
        env.close()
        eval_env.close()
    summary["objective"] = summary.get(f"{phases[-1].name}/eval/return/mean", float("nan"))
    return summary


def _checkpoint(run: Run, phase_index: int, learner: PhaseLearner, summary: dict[str, float],
                name: str = "latest", **extra: Any) -> None:
    run.save_checkpoint({"phase_index": phase_index, "frames": learner.frames, "learner": learner.state_dict(),
                         "pending": {"episodes": list(learner.episodes), "update_stats": list(learner.update_stats)},
                         "torch_rng": torch.get_rng_state(), "summary": dict(summary),
                         "wall_time_s": run.elapsed(), **extra}, name=name)
