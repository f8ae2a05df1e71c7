"""The protocol loop (option learning → transfer) shared by MSOL and the baselines that follow its protocol.

``run_protocol`` builds the phases (same task pools, slots and per-task frame budgets for every algorithm), then
for each phase asks the algorithm for a :class:`PhaseLearner`, iterates it, writes ``phase`` rows every log
interval and ``<phase>/eval`` rows every eval interval (``frames_per_task`` and per-task ``return/<task>``
columns), checkpoints by wall clock and at every phase end, and resumes mid-phase bit for bit. MSOL and its special
cases (``msol.soft_options.trainer``), MLSH and Option-Critic each supply only their learner.

The loop serves a population (``msol.common.population``): one learner iterates every member at once, while each member
logs, evaluates and checkpoints into its own run. Learners written for one run (:class:`SoloLearner`) take part as
populations of one.
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

from msol.common.device import env_tensor
from msol.common.envs_adapter import MultitaskEnv, StepOut, make_env, resolve_tasks
from msol.common.interrupt import Interrupted, StopSignals
from msol.common.layers import Generators
from msol.common.population import PopulationEnv
from msol.common.run import Run


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


SLOT_TASK_DRAWS = ("keep", "uniform")  # how a reset task slot draws its next task (``algo.slot_task_draw``)


def draw_slot_task(tasks: list[str], slot_tasks: list[str], slot: int, rule: str,
                   generator: torch.Generator | None = None) -> str:
    """The task of a slot after its regular reset.

    ``keep`` (MSOL's default): the slot keeps its task (authors' ``reset_task``: "Constraints remain the same"), so
    every task always has the same number of slots. ``uniform``: any task, uniformly (one ``torch.randint`` from
    ``generator``, so runs stay reproducible on resume) — MLSH's task draw; for MSOL it left 3–7 of Taxi's 12 tasks in no slot at any time
    and lost a run three tasks (docs/benchmarks.md).
    """
    if rule == "keep":
        return slot_tasks[slot]
    if rule == "uniform":
        return tasks[int(torch.randint(len(tasks), (1,), generator=generator))]
    raise ValueError(f"algo.slot_task_draw={rule!r}; valid: {', '.join(SLOT_TASK_DRAWS)}")


class PhaseLearner(Protocol):
    """One phase of one algorithm on the batched multitask envs of every member of a population."""

    model: torch.nn.Module
    frames: int  # frames per task done in this phase (the same for every member)
    frames_per_iteration: int  # frames per task one ``iterate`` adds (a phase runs whole iterations)

    def start(self, seeds: list[int]) -> None: ...  # one env seed per member
    def iterate(self) -> None: ...  # collect experience and update; advances ``frames``
    def pop_log_rows(self) -> list[dict[str, float]]: ...  # one row per member
    def evaluate(self, member: int, env: MultitaskEnv, seed: int) -> dict[str, float]: ...
    def finish_phase(self, member: int, run: Run) -> dict[str, float]: ...  # pictures/probes -> summary entries
    def pending(self, member: int) -> dict[str, list]: ...  # statistics gathered since the last log row
    def restore_pending(self, member: int, pending: dict[str, list]) -> None: ...
    def state_dict(self, member: int) -> dict[str, Any]: ...
    def load_state_dicts(self, states: list[dict[str, Any]]) -> None: ...
    def model_state(self, member: int) -> dict[str, torch.Tensor]: ...  # the member's networks, for readers


# (cfg, phase, env, learner of the previous phase or None when resuming straight into this one, one generator per
# member) -> learner
MakeLearner = Callable[[DictConfig, PhaseSpec, PopulationEnv, "PhaseLearner | None", Generators], PhaseLearner]


class SingleRunLearner(Protocol):
    """A learner written for one run (MLSH, Option-Critic): the protocol runs it as a population of one."""

    model: torch.nn.Module
    frames: int
    frames_per_iteration: int
    episodes: list[tuple[int, float]]     # (slot, return) of the episodes finished since the last log row
    update_stats: list[dict[str, float]]  # statistics of the updates since the last log row

    def start(self, seed: int) -> None: ...
    def iterate(self) -> None: ...
    def pop_log_row(self) -> dict[str, float]: ...
    def evaluate(self, env: MultitaskEnv, seed: int) -> dict[str, float]: ...
    def finish_phase(self, run: Run) -> dict[str, float]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class SoloLearner:
    """A :class:`SingleRunLearner` as the :class:`PhaseLearner` of a population of one (it draws from torch's
    global generator, which the protocol seeds and checkpoints)."""

    def __init__(self, learner: SingleRunLearner) -> None:
        self.learner = learner

    @property
    def model(self) -> torch.nn.Module:
        return self.learner.model

    @property
    def frames(self) -> int:
        return self.learner.frames

    @property
    def frames_per_iteration(self) -> int:
        return self.learner.frames_per_iteration

    def start(self, seeds: list[int]) -> None:
        self.learner.start(seeds[0])

    def iterate(self) -> None:
        self.learner.iterate()

    def pop_log_rows(self) -> list[dict[str, float]]:
        return [self.learner.pop_log_row()]

    def evaluate(self, member: int, env: MultitaskEnv, seed: int) -> dict[str, float]:
        return self.learner.evaluate(env, seed)

    def finish_phase(self, member: int, run: Run) -> dict[str, float]:
        return self.learner.finish_phase(run)

    def pending(self, member: int) -> dict[str, list]:
        return {"episodes": list(self.learner.episodes), "update_stats": list(self.learner.update_stats)}

    def restore_pending(self, member: int, pending: dict[str, list]) -> None:
        self.learner.episodes = [tuple(e) for e in pending.get("episodes", [])]
        self.learner.update_stats = list(pending.get("update_stats", []))

    def state_dict(self, member: int) -> dict[str, Any]:
        return self.learner.state_dict()

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        self.learner.load_state_dict(states[0])

    def model_state(self, member: int) -> dict[str, torch.Tensor]:
        return self.learner.model.state_dict()


def single_run(make: Callable[[DictConfig, PhaseSpec, MultitaskEnv, Any], SingleRunLearner]) -> MakeLearner:
    """The :data:`MakeLearner` of a learner written for one run (a population of one)."""
    def make_solo(cfg: DictConfig, spec: PhaseSpec, env: PopulationEnv, previous: PhaseLearner | None,
                  generators: Generators) -> PhaseLearner:
        if len(env.members) != 1:
            raise ValueError(f"algo={cfg.algo.name} trains one run per process; use population=1")
        return SoloLearner(make(cfg, spec, env.members[0], previous.learner if previous is not None else None))
    return make_solo


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
    env: MultitaskEnv, *, seed: int, slot_tasks: list[str], act: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device, on_step: Callable[[StepOut, np.ndarray], None] | None = None,
) -> dict[str, float]:
    """One episode in every env of ``env`` (slots set to ``slot_tasks``); mean returns overall and per task.

    ``act(obs, first) -> actions`` is the agent's step for all envs at once (``obs`` and ``first`` on ``device``);
    it keeps its own per-env state (current option, macro-step counter ...) and must start fresh where ``first``
    is 1. ``on_step(out, finished)``, if given, sees every step's :class:`StepOut` with the mask of envs whose
    episode had already ended before it (their rows belong to episodes that are not counted).
    """
    env.set_slot_tasks(slot_tasks)
    obs = env_tensor(env.reset(seed=seed), device)
    n = env.num_envs
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    first = torch.ones(n, device=device)
    while not done.all():
        out = env.step(act(obs, first).cpu().numpy())
        if on_step is not None:
            on_step(out, done.copy())
        returns += np.where(done, 0.0, out.reward)
        lengths += ~done
        done |= out.terminated | out.truncated
        obs = env_tensor(out.obs, device)
        first = env_tensor(out.terminated | out.truncated, device)
    row = {"return/mean": float(returns.mean()), "episode_length": float(lengths.mean())}
    tasks = np.asarray([env.slot_tasks[s] for s in env.slot_of_env])
    for task in sorted(set(tasks.tolist())):
        row[f"return/{task}"] = float(returns[tasks == task].mean())
    return row


def iteration_frames(cfg: DictConfig) -> int:
    """Frames per task one iteration of a protocol learner adds: every env of a slot steps ``algo.n_steps`` times
    (MLSH: ``algo.rollout_steps``). A phase runs whole iterations, so its budget is rounded up to a multiple."""
    steps = OmegaConf.select(cfg, "algo.rollout_steps", default=None) or cfg.algo.n_steps
    return int(steps) * int(cfg.algo.envs_per_slot)


def log_intervals(cfg: DictConfig, spec: PhaseSpec) -> tuple[int, int]:
    """(log, eval) intervals in frames per task: the configured ones, shortened so that a short (reduced-budget)
    phase still gets at least 50 log rows and 10 evaluations."""
    log_every = max(1, min(int(cfg.logger.log_interval_frames_per_task), spec.frames_per_task // 50))
    eval_every = max(1, min(int(cfg.eval.interval_frames_per_task), spec.frames_per_task // 10))
    return log_every, eval_every


def run_protocol(runs: list[Run], make_learner: MakeLearner, phases: list[PhaseSpec] | None = None
                 ) -> list[dict[str, float]]:
    """Every phase of the members' config in order, with logging, evaluation, checkpoints and exact resume; one
    summary per member.

    ``runs`` are the members' runs (their configs differ only in ``seed``). ``phases`` defaults to
    :func:`protocol_phases` (no regular task-slot resets); MSOL passes its own.
    """
    cfg = runs[0].cfg
    seeds = [int(run.cfg.seed) for run in runs]
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    torch.manual_seed(cfg.seed)  # learners of one run (SoloLearner) draw from the global generators
    np.random.seed(cfg.seed)
    phases = protocol_phases(cfg) if phases is None else phases
    resumes = [run.load_checkpoint() for run in runs]
    resume = resumes[0]
    start_phase = int(resume["phase_index"]) if resume else 0
    global_offset = sum(p.frames_per_task for p in phases[:start_phase])
    done_in_phase = int(resume["frames"]) if resume else 0
    members = f" ×{len(runs)} seeds" if len(runs) > 1 else ""
    step = iteration_frames(cfg)
    run_to = [-(-p.frames_per_task // step) * step for p in phases]  # phases run whole iterations
    for spec, frames in list(zip(phases, run_to, strict=True))[start_phase:]:
        if frames != spec.frames_per_task:  # said before the run starts, and counted on the bar
            runs[0].announce(f"msol.train: phase {spec.name}: {spec.frames_per_task:,} frames per task configured, "
                             f"{frames:,} run (whole iterations of {step:,} frames per task)")
    runs[0].start_progress(sum(run_to), initial=sum(run_to[:start_phase]) + done_in_phase,
                           desc=f"{cfg.algo.name}/{cfg.env.name}{members}")
    # The summary is part of the state: a run resumed in transfer must still report its option-learning results.
    summaries = [dict(state.get("summary", {})) if state else {} for state in resumes]
    population = _Population(runs, seeds, generators, summaries)
    with StopSignals() as stop:
        _run_phases(cfg, population, make_learner, phases, resumes if resume else None, start_phase,
                    global_offset, stop)
    for summary in summaries:
        summary["objective"] = summary.get(f"{phases[-1].name}/eval/return/mean", float("nan"))
    return summaries


@dataclass
class _Population:
    runs: list[Run]
    seeds: list[int]
    generators: list[torch.Generator]
    summaries: list[dict[str, float]]


def _run_phases(cfg: DictConfig, pop: _Population, make_learner: MakeLearner, phases: list[PhaseSpec],
                resumes: list[dict[str, Any]] | None, start_phase: int, global_offset: int,
                stop: StopSignals) -> None:
    learner: PhaseLearner | None = None
    last_ckpt = -float("inf")  # the first checkpoint comes with the first log row: every run is resumable early
    lead = pop.runs[0]  # shows the progress bar and names the resume command
    for index, spec in enumerate(phases):
        if index < start_phase:
            continue
        transfer = spec.name != "options"  # env.transfer_id/transfer_kwargs, e.g. Taxi with moved locations
        env = PopulationEnv([make_env(run.cfg, spec.slot_tasks, mode=spec.mode,
                                      envs_per_slot=int(cfg.algo.envs_per_slot), seed=seed * 1000 + index,
                                      transfer=transfer) for run, seed in zip(pop.runs, pop.seeds)])
        eval_envs = [make_env(run.cfg, spec.slot_tasks, mode=str(cfg.env.eval_mode),
                              envs_per_slot=int(cfg.eval.episodes_per_slot), seed=seed * 1000 + 500 + index,
                              transfer=transfer) for run, seed in zip(pop.runs, pop.seeds)]
        learner = make_learner(cfg, spec, env, learner, pop.generators)
        if resumes and index == start_phase:
            learner.load_state_dicts([state["learner"] for state in resumes])
            for member, state in enumerate(resumes):
                # Statistics since the last row (a checkpoint written on a signal falls between rows).
                learner.restore_pending(member, state.get("pending", {}))
                # After building the learner: its fresh initialisation draws from the RNGs the checkpoint restores.
                pop.generators[member].set_state(state["generator"])
            torch.set_rng_state(resumes[0]["torch_rng"])
            resumes = None
        else:
            learner.start(seeds=[seed * 1000 + index for seed in pop.seeds])
        if learner.frames_per_iteration != iteration_frames(cfg):
            raise RuntimeError(f"{type(learner).__name__} adds {learner.frames_per_iteration} frames per task per "
                               f"iteration; msol.common.protocol.iteration_frames says {iteration_frames(cfg)}")
        log_every, eval_every = log_intervals(cfg, spec)
        t0, f0 = time.time(), learner.frames
        while learner.frames < spec.frames_per_task:
            before = learner.frames
            learner.iterate()
            after = learner.frames
            lead.progress(after - before, phase=spec.name)
            finished = after >= spec.frames_per_task
            if after // eval_every > before // eval_every or finished:
                for member, (run, seed) in enumerate(zip(pop.runs, pop.seeds)):
                    eval_row = learner.evaluate(member, eval_envs[member],
                                                seed=seed * 7 + after // eval_every + 100000 * index)
                    eval_row["frames_per_task"] = after
                    run.log(global_offset + after, eval_row, phase=f"{spec.name}/eval")
                    pop.summaries[member].update({f"{spec.name}/eval/{k}": v for k, v in eval_row.items()})
            if after // log_every > before // log_every or finished:
                fps = (after - f0) * spec.num_slots * len(pop.runs) / max(time.time() - t0, 1e-9)
                for member, row in enumerate(learner.pop_log_rows()):
                    row["frames_per_task"] = after
                    row["fps"] = fps / len(pop.runs)  # each member's share: what a single run's column means
                    pop.runs[member].log(global_offset + after, row, phase=spec.name)
                    pop.summaries[member].update({f"{spec.name}/{k}": v for k, v in row.items() if k != "fps"})
                    if member == 0:
                        lead.progress(0, ret=row["return/mean"], env_frames_per_s=int(fps))
                # Timed checkpoints come right after a row, when no statistics are pending.
                if time.time() - last_ckpt >= float(cfg.checkpoint_interval_s) and not finished:
                    _checkpoint(pop, index, learner)
                    last_ckpt = time.time()
            if stop.requested and not finished:
                _checkpoint(pop, index, learner)
                raise Interrupted(stop.signum, f"interrupted by {signal.Signals(stop.signum).name} after the update "
                                  f"at {after:,} frames per task of phase {spec.name}; checkpoint written; "
                                  f"continue with: python -m msol.train resume={lead.dir}")
        for member, run in enumerate(pop.runs):
            pop.summaries[member].update(learner.finish_phase(member, run))
        # Phase end: always; <phase>.pt is the phase's end in full, what ``init_from=`` starts another run from.
        _checkpoint(pop, index, learner, phase_end=spec.name)
        global_offset += spec.frames_per_task
        env.close()
        for eval_env in eval_envs:
            eval_env.close()


def _checkpoint(pop: _Population, phase_index: int, learner: PhaseLearner, phase_end: str | None = None) -> None:
    """Every member's state into its own run's ``latest.pt`` (and, at a phase end, ``<phase>.pt`` with the member's
    ``model`` for readers). With several members each ``latest.pt`` first moves to ``previous.pt``: a kill between
    two members' writes leaves a step that every member holds (``msol.common.population``)."""
    for member, run in enumerate(pop.runs):
        state = {"phase_index": phase_index, "frames": learner.frames, "learner": learner.state_dict(member),
                 "pending": learner.pending(member), "generator": pop.generators[member].get_state(),
                 "torch_rng": torch.get_rng_state(), "summary": dict(pop.summaries[member]),
                 "wall_time_s": run.elapsed()}
        run.save_checkpoint(state, name="latest", keep_previous=len(pop.runs) > 1)
        if phase_end is not None:
            run.save_checkpoint({**state, "model": learner.model_state(member)}, name=phase_end)
