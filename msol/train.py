"""Training entry point: ``python -m msol.train env=taxi algo=msol`` (or the ``msol-train`` script).

Hydra composes the config from ``configs/`` (groups ``env/``, ``algo/``, ``logger/``, ``experiment/``, ...); this
module validates it, opens the run directory and hands both to the registered algorithm. ``resume=<run dir>``
continues an interrupted run from its last checkpoint with the run's own saved config (``msol.common.resume``; Hydra is
not started, so nothing in the run directory is written before the resume is known to be valid).

Exit status: 0 done (or, on resume, the run was already finished); 2 bad input (config, run directory,
checkpoint, a resume that would change the run), one line on stderr, no traceback; 3 numerical fault (NaN/inf),
the last good checkpoint is kept for ``resume=``; 4 the machine refused a write (disk full, read-only file system,
permission denied): one line naming the path and the cause, the last good checkpoint kept; 130 / 143 / 140
interrupted by SIGINT / SIGTERM / SIGUSR2: the algorithms of the protocol loop finish the current update, write a
checkpoint and print the ``resume=`` command first (``msol.common.interrupt``; in a submitit job SIGUSR2 requeues the job,
which then continues its run). Re-running a sweep (``-m``) continues it: finished jobs are skipped, checkpointed ones
resumed.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from msol.common.algorithms import AlgorithmSpec, get_algorithm
from msol.common.checkpoint import CheckpointError, WriteError, write_error
from msol.common.config_check import ConfigError, validate_config
from msol.common.interrupt import Interrupted, hand_over
from msol.common.numerics import NumericalFault, as_numerical_fault
from msol.common.population import (
    POPULATION_FILE,
    consistent_checkpoints,
    member_config,
    member_run_dirs,
    member_seeds,
    population_members,
    write_population_file,
)
from msol.common.run import RESULT_NEUTRAL_KEYS, Run, RunDirError, config_differences, refuse_busy_run_dir
from msol.common.twins import twin_configs

log = logging.getLogger(__name__)

# Keys in which a sweep job may differ from the run it finds in its directory and still continue it.
SWEEP_FREE_KEYS = (*RESULT_NEUTRAL_KEYS, "resume", "run_dir")

# ``hydra.run.dir`` uses this so that ``resume=<dir>`` reopens that directory instead of making a new one.
if not OmegaConf.has_resolver("msol_run_dir"):
    # The first of (run_dir, resume, default) that is set: Hydra's files then go into the run directory itself.
    OmegaConf.register_new_resolver("msol_run_dir", lambda *choices: next(c for c in choices if c))


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict:
    """Train the configured algorithm; returns its final summary. Usable from Python as well as from the CLI.

    With ``population=S`` the ``S`` members' summaries are under ``members`` and ``objective`` is their mean.
    Algorithms registered with ``populations`` train the members together; the others one after another.
    """
    validate_config(cfg, overrides=_job_overrides())
    torch.set_num_threads(int(cfg.torch_threads))
    if cfg.resume:
        run_dir = Path(str(cfg.resume))
    elif cfg.get("run_dir"):
        run_dir = Path(str(cfg.run_dir))
    elif run_dir is None:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
    algo = get_algorithm(str(cfg.algo.name))
    members = _members(cfg, run_dir)
    summaries: dict[Path, dict] = {m.path: _read_summary(m.path) for m in members if m.finished}
    todo = [m for m in members if not m.finished]
    if len(members) > 1 and not cfg.resume:  # every member's directory names the others before any trains
        for member in todo:
            if not member.cfg.resume:
                refuse_busy_run_dir(member.path)
        for member in members:
            member.path.mkdir(parents=True, exist_ok=True)
        write_population_file([m.path for m in members], [int(m.cfg.seed) for m in members])
    # A population learner trains the unfinished members together; a learner of one run, one after another.
    groups = [[m] for m in todo] if not algo.populations else [todo] if todo else []
    for group in groups:
        summaries.update(_train_together(cfg, algo, group))
    for twin in twin_configs(cfg, members[0].path):  # algo.also_transfer: transfers from this option learning
        train(twin)
    ordered = [summaries[m.path] for m in members]
    if len(ordered) == 1:
        return ordered[0]
    objectives = [s.get("objective", float("nan")) for s in ordered]
    return {"objective": float(sum(objectives) / len(objectives)), "members": ordered}


@dataclass
class _Member:
    cfg: DictConfig  # the member's own config (its seed; ``resume`` set when it continues from a checkpoint)
    path: Path
    finished: bool = False


def _members(cfg: DictConfig, run_dir: Path) -> list[_Member]:
    """Every member of the run: one for a single run. On resume, the population's own members, each finished,
    continued from its checkpoint, or (members of a population trained one after another) not started yet."""
    seeds = member_seeds(cfg)
    if not cfg.resume:
        dirs = member_run_dirs(run_dir, int(cfg.seed), seeds)
        members = [_Member(member_config(cfg, seed), path) for seed, path in zip(seeds, dirs)]
        if _in_sweep():
            for member in members:
                _continue_existing(member)
        return members
    by_seed = population_members(run_dir) if len(seeds) > 1 else {seeds[0]: run_dir}
    if len(by_seed) != len(seeds):
        raise RunDirError(f"resume={run_dir}: {POPULATION_FILE} lists {len(by_seed)} members, the config "
                          f"population={len(seeds)}")
    members = []
    for seed, path in by_seed.items():
        member = member_config(cfg, seed)
        _run_in(member, path, resume=(path / "checkpoints" / "latest.pt").exists())
        # A finished member of a population is skipped; a single run resumes even when finished (in-process
        # callers continue a finished run with a larger budget; the CLI says "finished" before this, msol.common.resume).
        members.append(_Member(member, path, finished=len(seeds) > 1 and (path / "summary.json").exists()))
    return members


def _in_sweep() -> bool:
    """Whether this is a job of a Hydra sweep (``-m``): re-running a sweep continues it (:func:`_continue_existing`)."""
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _continue_existing(member: _Member) -> None:
    """A sweep job whose run directory already holds a run of this configuration: skip it when finished, resume it
    from its checkpoint otherwise (a directory without a checkpoint starts again). A run of another configuration
    there is refused: the sweep directory belongs to another command."""
    saved_path = member.path / "config.yaml"
    if not saved_path.exists():
        return
    differing = config_differences(OmegaConf.load(saved_path), member.cfg, SWEEP_FREE_KEYS)
    if differing:
        raise RunDirError(f"{member.path} holds a run of another configuration ({'; '.join(differing[:4])}); this "
                          "sweep directory was made by another command: give this one its own hydra.sweep.dir")
    if (member.path / "summary.json").exists():
        member.finished = True
        print(f"msol.train: {member.path} is finished; skipped", flush=True)
    elif (member.path / "checkpoints" / "latest.pt").exists():
        _run_in(member.cfg, member.path, resume=True)
        print(f"msol.train: {member.path} continues from its checkpoint", flush=True)


def _run_in(cfg: DictConfig, path: Path, resume: bool) -> None:
    """Point a member's config at its existing directory, continuing from its checkpoint when ``resume``."""
    with open_dict(cfg):
        cfg.resume = str(path) if resume else None
        cfg.run_dir = str(path)


def _read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _train_together(cfg: DictConfig, algo: AlgorithmSpec, members: list[_Member]) -> dict[Path, dict]:
    """Train ``members`` in one learner (a population) or, for a learner of one run, the one member."""
    runs = _open_runs(cfg, members)
    lead_cfg = runs[0].cfg
    try:
        summaries = algo.train(lead_cfg, runs) if algo.populations else [algo.train(lead_cfg, runs[0])]
    except NumericalFault as exc:
        for run in runs:
            run.abort(exit_code=1)
        raise NumericalFault(f"{exc}; {runs[0].fault_note()}") from exc
    except BaseException as exc:
        for run in runs:
            run.abort(exit_code=1)
        fault = as_numerical_fault(exc)  # torch refusing NaN while sampling, before any check of ours ran
        if fault is not None:
            raise NumericalFault(f"{fault}; {runs[0].fault_note()}") from exc
        raise
    for run, summary in zip(runs, summaries, strict=True):
        run.finish(summary)
        _report_end(cfg, run.dir, summary)
    return {member.path: summary for member, summary in zip(members, summaries, strict=True)}


def _open_runs(cfg: DictConfig, members: list[_Member]) -> list[Run]:
    """Open every member's run directory (all or none: a refused member closes the ones already opened)."""
    resuming = [bool(m.cfg.resume) for m in members]
    if any(resuming) and not all(resuming):
        raise RunDirError(f"resume={members[0].path}: some members of this population have a checkpoint and some "
                          "have none; resume them one by one with population=1")
    init_from = Path(str(cfg.init_from)) if cfg.get("init_from") and not cfg.resume else None
    seeds = [int(m.cfg.seed) for m in members]
    sources = _init_sources(init_from, seeds) if init_from else [None] * len(members)
    checkpoints = consistent_checkpoints([m.path for m in members]) if all(resuming) else ["latest"] * len(members)
    runs: list[Run] = []
    try:
        for member, source, checkpoint in zip(members, sources, checkpoints, strict=True):
            if source is not None:  # each member records the run it starts from
                with open_dict(member.cfg):
                    member.cfg.init_from = str(source)
            runs.append(Run(member.cfg, member.path, resume=bool(member.cfg.resume), init_from=source,
                            resume_checkpoint=checkpoint))
    except BaseException:
        for run in runs:
            run.abort()
        raise
    return runs


def _init_sources(init_from: Path, seeds: list[int]) -> list[Path]:
    """The source run of each member: ``init_from`` itself, or for a population the member of the same seed in
    ``init_from``'s population."""
    if len(seeds) == 1:
        return [init_from]
    by_seed = population_members(init_from)
    missing = [s for s in seeds if s not in by_seed]
    if missing:
        raise RunDirError(f"init_from={init_from}: its population has no member with seed(s) {missing}; "
                          f"it has {sorted(by_seed)}")
    return [by_seed[s] for s in seeds]


def _report_end(cfg: DictConfig, run_dir: Path, summary: dict) -> None:
    """One line a person can act on: where the run is, how it ended, how to plot (and sync) it; also in train.log."""
    final = summary.get("objective")
    result = f"final evaluation return {final:.4g}" if isinstance(final, (int, float)) and math.isfinite(final) \
        else "no final evaluation return"
    line = f"msol.train: finished {run_dir}: {result}; plot: python -m msol.plot {run_dir}"
    if cfg.logger.get("wandb", False) and cfg.logger.get("mode", "offline") == "offline":
        line += f"; W&B: wandb sync {run_dir}/wandb/offline-run-*"
    print(line, flush=True)
    with (run_dir / "train.log").open("a") as handle:
        handle.write(line + "\n")


@hydra.main(version_base="1.3", config_path="pkg://msol.configs", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    return _train_or_exit(cfg)


def _train_or_exit(cfg: DictConfig) -> float | None:
    """:func:`train`, with every expected fault turned into one line on stderr and a documented exit status."""
    try:
        summary = train(cfg)
    except (ConfigError, RunDirError, CheckpointError, KeyError) as exc:
        _fail(exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc))
    except NumericalFault as exc:
        print(f"msol.train: numerical fault: {exc}", file=sys.stderr)
        sys.exit(3)
    except (WriteError, OSError) as exc:
        error = exc if isinstance(exc, WriteError) else write_error(Path(exc.filename or "?"), exc)
        print(f"msol.train: error: {error}; the last good checkpoint (if any) is kept", file=sys.stderr)
        sys.exit(4)
    except Interrupted as exc:
        print(f"msol.train: {exc}", file=sys.stderr)
        hand_over(exc.signum)  # in a submitit job: requeue it (it continues from this checkpoint)
        sys.exit(exc.exit_status)
    except KeyboardInterrupt:  # a second Ctrl-C, or an algorithm outside the protocol loop
        print("msol.train: interrupted; the last checkpoint written (if any) stays the last good one", file=sys.stderr)
        sys.exit(130)
    except (ValueError, TypeError) as exc:
        # Bad input found by an algorithm's own checks (the codebase's convention for them): one line + where.
        # HYDRA_FULL_ERROR=1 (Hydra's switch for full reports) shows the traceback instead.
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        _fail(f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__} "
              f"(raised at {Path(where.filename).name}:{where.lineno})")
    # Returned to Hydra so sweepers can optimise over it.
    value = summary.get("objective")
    return float(value) if value is not None else None


# ``hydra.searchpath=[pkg://their_package.configs]``: config groups of another package (e.g. its algo/<name>.yaml)
SEARCHPATH = "hydra.searchpath="


def _job_overrides() -> list[str]:
    """This job's value overrides (the command line's, or a sweep job's), when Hydra started it."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def _fail(message: str) -> None:
    print(f"msol.train: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_group_overrides(argv: list[str]) -> None:
    """Reject ``env=``/``algo=``/``logger=``/... names that have no config, before Hydra starts.

    Hydra would also fail, but with exit status 1 and a traceback-style report; a typo deserves one line and 2.
    """
    if any(arg.startswith(SEARCHPATH) for arg in argv):
        return  # another package's configs are on the search path: preflight composes with them
    groups = config_groups()
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in groups:
            continue
        valid = config_options(key)
        for name in filter(None, value.split(",")):
            if name not in valid and name != "null":
                _fail(f"unknown {key} {name!r}; valid: {', '.join(valid)}")


def preflight(argv: list[str]) -> None:
    """Compose the config of a single run exactly as Hydra will and validate every value, before Hydra starts
    (so bad input leaves no run directory behind). Multirun and Hydra's own flags are left to Hydra: each job is
    then validated by :func:`train`."""
    if any(arg.startswith("-") for arg in argv):
        return
    overrides = [arg for arg in argv
                 if arg.startswith(SEARCHPATH) or not arg.lstrip("+~").startswith(("hydra.", "hydra/"))]
    groups = config_groups()
    choices = [arg for arg in overrides
               if arg.startswith(SEARCHPATH) or arg.lstrip("+~").partition("=")[0] in groups]
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        try:
            defaults = compose("train", overrides=choices)
        except Exception as exc:  # noqa: BLE001 - Hydra's missing-config report, turned into one line
            _fail(_group_problem(exc))
        try:
            cfg = compose("train", overrides=overrides)
        except Exception as exc:  # noqa: BLE001 - Hydra's override errors, turned into one line each
            _fail(_override_problem(exc, overrides, defaults))
    try:
        validate_config(cfg, defaults=defaults, overrides=overrides)
    except ConfigError as exc:
        _fail(str(exc))
    target = Path(str(cfg.run_dir)) if cfg.get("run_dir") else Path("runs")
    if cfg.get("run_dir"):  # Hydra writes <run_dir>/.hydra first: refuse a directory in use before it does
        try:
            refuse_busy_run_dir(target)
        except RunDirError as exc:
            _fail(str(exc))
    refusal = unwritable(target)
    if refusal:  # Hydra would fail first, with a traceback ("Unable to configure handler 'file'")
        print(f"msol.train: error: cannot write {target}: {refusal}", file=sys.stderr)
        sys.exit(4)


def unwritable(path: Path) -> str | None:
    """Why ``path`` (or the nearest folder above it that exists) cannot be written to, or None if it can."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is read-only or not ours (permission denied)"
    return None


def _group_problem(exc: Exception) -> str:
    """Hydra's report of a config-group option it could not find (``algo=typo``), as one line with the options it
    has — with ``hydra.searchpath`` those of every package on the search path."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    missing = next((line.split("Could not find ", 1)[1].strip("'") for line in lines if "Could not find " in line), "")
    group, _, name = missing.partition("/")
    if "Available options in" not in str(exc) or not name:
        return lines[0] if lines else type(exc).__name__
    start = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
    options = [line for line in lines[start + 1:] if not line.startswith(("Config search path", "provider="))]
    options = options[:next((i for i, o in enumerate(options) if ":" in o), len(options))]
    return f"unknown {group} {name!r}; valid: {', '.join(options)}"


def _override_problem(exc: Exception, overrides: list[str], defaults: DictConfig) -> str:
    cause = f"{exc.__cause__}" if exc.__cause__ is not None else ""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "is not in struct" in cause:
        full_key = next((line.split(":", 1)[1].strip() for line in cause.splitlines() if "full_key:" in line), "")
        arg = next((a for a in overrides if a.partition("=")[0] == full_key), full_key)
        parent, _, leaf = full_key.rpartition(".")
        node = OmegaConf.select(defaults, parent) if parent else defaults
        known = [str(k) for k in node] if isinstance(node, DictConfig) else []
        close = difflib.get_close_matches(leaf, known, n=3)
        hint = f"did you mean {', '.join(f'{parent}.{c}' if parent else c for c in close)}? " if close else ""
        return f"{arg}: no such config key {full_key!r} ({hint}to add a new key: +{arg})"
    if "Ambiguous value" in first:
        return f"{first.removeprefix('Ambiguous value for argument ')}: a list is key=[a,b]; to sweep, add --multirun"
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for arg in overrides:  # name the one override that does not parse
        try:
            OverridesParser.create().parse_overrides([arg])
        except Exception as parse_exc:  # noqa: BLE001 - the parser's own message names the problem
            return f"cannot parse override {arg!r}: {str(parse_exc).splitlines()[0]}"
    return f"cannot apply overrides {' '.join(overrides)}: {first}"


def config_groups() -> list[str]:
    """The config groups shipped in the ``configs`` package (its sub-folders holding yaml files)."""
    from importlib.resources import files

    return sorted(p.name for p in files("msol.configs").iterdir()
                  if p.is_dir() and any(q.name.endswith(".yaml") for q in p.iterdir()))


def config_options(group: str) -> list[str]:
    """Names of the configs of ``group`` shipped in the ``configs`` package."""
    from importlib.resources import files

    folder = files("msol.configs") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resume_main(argv: list[str]) -> None:
    """``resume=<run dir> [free overrides]``: the run's saved config, without Hydra (which would rewrite
    ``<run dir>/.hydra`` and ``train.log`` before anything is checked)."""
    from msol.common.resume import RunFinished, resume_config

    run_dir = next(a.partition("=")[2] for a in argv if a.startswith("resume="))
    try:
        cfg = resume_config(Path(run_dir), argv)
    except RunFinished as exc:
        print(f"msol.train: {exc}", file=sys.stderr)
        return
    except (ConfigError, RunDirError) as exc:
        _fail(str(exc))
    _train_or_exit(cfg)


def main() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    argv = sys.argv[1:]
    if any(a.startswith("resume=") and a != "resume=null" for a in argv) and \
            not any(a in ("-m", "--multirun") for a in argv):
        resume_main(argv)
        return
    check_group_overrides(argv)
    preflight(argv)
    _hydra_main()


if __name__ == "__main__":
    main()
