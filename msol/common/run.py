"""The run directory: the one durable record of a training run.

Layout of ``run.dir``::

    config.yaml          the fully resolved config (what produced this run)
    metrics.jsonl        one JSON row per log step (``step``, ``phase``, ``frames_per_task``, metrics ...)
    checkpoints/latest.pt   the newest complete checkpoint (atomic), plus ``<phase>.pt`` at the end of each phase
    figures/             PNGs (also sent to W&B)
    summary.json         the final metrics, written last: its presence means the run finished
    run.lock             held (flock) while a process trains here; a second process is refused

Guarantees (docs/reliability.md): a checkpoint is never half-written (``save_atomic``) and never holds a NaN/inf
tensor (the previous one is kept instead); a logged loss that is NaN/inf stops the run (``NumericalFault``).

Resuming (``resume=<run dir>``) loads ``checkpoints/latest.pt`` and cuts ``metrics.jsonl`` back to the rows that
checkpoint had seen, so an interrupted-then-resumed run writes the same rows as an uninterrupted one.

Starting from another run's option learning (``init_from=<run dir>``, e.g. MSOL(frozen) from an MSOL run: the paper's
"they only differ during testing") loads that run's ``checkpoints/options.pt`` and copies the metrics rows it had
seen into the new run, which then continues exactly as the source would have from the end of its option learning.
Only keys that act after option learning may differ between the two configs (:data:`INIT_FROM_FREE_KEYS`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from msol.common.checkpoint import CheckpointError, load_checked, remove_stale_temporaries, save_atomic
from msol.common.numerics import check_finite_metric, check_finite_state
from msol.common.wandb_sink import WandbSink

# 2: content checksum (sha256) stored inside; 3: one learner state per phase (msol.common.protocol); 4: a member dimension
# in every parameter and the member's own torch.Generator (msol.common.population); 5: MLSH trains populations (its Adam
# state per member, msol.common.member_adam; its draws from the member's generator)
CHECKPOINT_FORMAT = 5

# Keys that steer logging, checkpoint timing, threads or the device, never what is learned: a resume may change them.
RESULT_NEUTRAL_KEYS = (
    "logger.wandb", "logger.mode", "logger.project", "logger.group", "logger.init_timeout", "logger.progress_bar",
    "checkpoint_interval_s", "torch_threads", "device", "population",
)
# Config keys that may differ between an ``init_from`` run and its source: they act only after option learning
# (the whole logger group included: its log interval only changes which rows the transfer writes).
INIT_FROM_FREE_KEYS = (
    *RESULT_NEUTRAL_KEYS, "logger", "algo.name", "algo.frozen", "algo.greedy_options", "algo.fresh_master_encoder",
    "algo.also_transfer",
    "algo.primitive_options", "algo.entropy_transfer", "algo.transfer_frames_per_task", "init_from", "resume",
    "run_dir",
)


class RunDirError(RuntimeError):
    """The run directory cannot be used (locked by another process, or inconsistent with the config)."""


class Run:
    """Owns a run directory: config, metrics, checkpoints, figures, W&B and the console progress bar."""

    def __init__(self, cfg: DictConfig, run_dir: Path, *, resume: bool = False,
                 init_from: Path | None = None, resume_checkpoint: str = "latest") -> None:
        self.cfg = cfg
        self.dir = Path(run_dir).resolve()
        self.resuming = resume
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_handle = self._acquire_lock()
        self.checkpoint_dir = self.dir / "checkpoints"
        self.figure_dir = self.dir / "figures"
        self.metrics_path = self.dir / "metrics.jsonl"
        self._resume_state: dict[str, Any] | None = None
        self._rows = 0
        self._last_step = 0
        self._checkpoint_step: int | None = None  # log step of the newest ``latest.pt`` written or resumed from
        self._bar: tqdm | None = None
        self._started = time.time()

        if resume:
            self._prepare_resume(resume_checkpoint)
        else:
            if (self.checkpoint_dir / "latest.pt").exists():
                self._release_lock()
                raise holds_checkpoint_error(self.dir)
            source = self._read_init_source(Path(init_from)) if init_from is not None else None
            self.metrics_path.write_text("")
            OmegaConf.save(cfg, self.dir / "config.yaml", resolve=True)
            if source is not None:
                self._start_from(*source)
        self._wandb = self._make_wandb() if cfg.logger.get("wandb", False) else None

    # ------------------------------------------------------------------ metrics
    def log(self, step: int, metrics: Mapping[str, Any], phase: str = "train") -> None:
        """Append one metrics row (``step`` is the run's global frame counter) and forward it to W&B."""
        row = {"step": int(step), "phase": phase, **{k: to_json_value(v) for k, v in metrics.items()}}
        with self.metrics_path.open("a") as handle:
            handle.write(dumps_strict(row) + "\n")
        self._rows += 1
        self._last_step = int(step)
        if self._wandb is not None:
            self._wandb.log(step, {f"{phase}/{k}" if "/" not in k else k: v for k, v in row.items()
                                   if isinstance(v, (int, float)) and k != "step"})
        # Written first (the row is the evidence), then the run stops: a NaN loss means a garbage update.
        for key, value in metrics.items():
            if "loss" in key:
                check_finite_metric(f"logged metric {key!r} ({phase} row at step {step})", value)

    def read_metrics(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.metrics_path.read_text().splitlines() if line.strip()]

    # ------------------------------------------------------------------ progress bar
    def start_progress(self, total: int, initial: int = 0, desc: str = "") -> None:
        """(Re)start the console bar; counts frames per task so the total matches the paper's budgets."""
        self.close_progress()
        enabled = self.cfg.logger.get("progress_bar", True)
        # One speed on the bar, labelled: the environment frames per second of the last log interval (all slots),
        # passed as ``env_frames_per_s``; tqdm's own rate (frames per task per second) is left out.
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit="frame", unit_scale=True,
                         dynamic_ncols=True, disable=not enabled, file=sys.stderr, mininterval=1.0,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames per task "
                                    "[{elapsed}<{remaining}{postfix}]")

    def progress(self, frames: int, **postfix: Any) -> None:
        if self._bar is None:
            return
        self._bar.update(frames)
        if postfix:
            self._bar.set_postfix({k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in postfix.items()},
                                  refresh=False)

    def announce(self, line: str) -> None:
        """One line for the person running this: on stdout and in ``train.log``."""
        print(line, flush=True)
        with (self.dir / "train.log").open("a") as handle:
            handle.write(line + "\n")

    def close_progress(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, state: dict[str, Any], name: str = "latest", keep_previous: bool = False) -> None:
        """Atomically write ``state`` (+ the metrics row count it belongs to) as ``checkpoints/<name>.pt``.

        A state holding a NaN/inf tensor raises :class:`NumericalFault` and is not written: the previous
        checkpoint stays the last good one. ``keep_previous`` first moves the old file to ``previous.pt``
        (populations: see ``msol.common.population.consistent_checkpoints``).
        """
        check_finite_state(f"checkpoint state (not written; the previous {name}.pt is kept)", state)
        payload = dict(state)
        payload["format"] = CHECKPOINT_FORMAT
        payload["metrics_rows"] = self._rows
        target = self.checkpoint_dir / f"{name}.pt"
        if keep_previous and target.exists():
            os.replace(target, self.checkpoint_dir / "previous.pt")
        save_atomic(payload, target)
        if name == "latest":
            self._checkpoint_step = self._last_step

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint to resume from, or ``None`` for a fresh run."""
        return self._resume_state

    # ------------------------------------------------------------------ figures and summary
    def log_image(self, name: str, path: Path, step: int | None = None) -> None:
        if self._wandb is not None:
            self._wandb.log_image(self._last_step if step is None else step, name, Path(path))

    def finish(self, summary: Mapping[str, Any], exit_code: int = 0) -> None:
        """Write ``summary.json`` (last, atomically) and close W&B and the lock."""
        self.close_progress()
        payload = {k: to_json_value(v) for k, v in summary.items()}
        payload["wall_time_s"] = time.time() - self._started + float(
            (self._resume_state or {}).get("wall_time_s", 0.0))
        # The finish time travels with the summary (file times do not survive a git checkout of docs/results).
        payload["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        tmp = self.dir / ".summary.json.tmp"
        tmp.write_text(dumps_strict(payload, indent=2))
        os.replace(tmp, self.dir / "summary.json")
        if self._wandb is not None:
            self._wandb.summary(payload)
            self._wandb.finish(exit_code)
        self._release_lock()

    def abort(self, exit_code: int = 1) -> None:
        """Close without a summary: the last good checkpoint stays in place for ``resume=``."""
        self.close_progress()
        if self._wandb is not None:
            self._wandb.finish(exit_code)
        self._release_lock()

    def fault_note(self) -> str:
        """Where a stopped run can continue from, for the one-line error of a numerical fault."""
        latest = self.checkpoint_dir / "latest.pt"
        if self._checkpoint_step is None or not latest.exists():
            return f"no checkpoint was written yet in {self.dir}"
        return (f"last good checkpoint kept: {latest} (metrics step {self._checkpoint_step}); "
                f"fix the cause, then resume={self.dir}")

    def elapsed(self) -> float:
        return time.time() - self._started + float((self._resume_state or {}).get("wall_time_s", 0.0))

    # ------------------------------------------------------------------ internals
    def _prepare_resume(self, checkpoint: str) -> None:
        latest = self.checkpoint_dir / f"{checkpoint}.pt"
        if not latest.exists():
            self._release_lock()
            raise RunDirError(f"resume={self.dir}: no checkpoint at {latest}; nothing to resume")
        try:
            state = load_checked(latest)
        except CheckpointError:
            self._release_lock()
            raise
        if state.get("format") != CHECKPOINT_FORMAT:
            self._release_lock()
            raise CheckpointError(f"resume={self.dir}: {latest} has checkpoint format {state.get('format')!r}, this "
                                  f"version of msol reads format {CHECKPOINT_FORMAT} only; resume it with the msol "
                                  "version that wrote it")
        if not (self.dir / "config.yaml").exists():
            self._release_lock()
            raise RunDirError(f"resume={self.dir}: config.yaml is missing; this is not a complete msol run directory")
        remove_stale_temporaries(self.checkpoint_dir)  # left by a process killed mid-write; we hold the lock
        saved_cfg = OmegaConf.load(self.dir / "config.yaml")
        for key in ("env.name", "algo.name", "seed"):
            old, new = OmegaConf.select(saved_cfg, key), OmegaConf.select(self.cfg, key)
            if old != new:
                self._release_lock()
                raise RunDirError(f"resume={self.dir}: {key} was {old!r} in that run but is {new!r} now")
        rows = self.metrics_path.read_text().splitlines(keepends=True) if self.metrics_path.exists() else []
        keep = int(state["metrics_rows"])
        if len(rows) < keep or any(not row.endswith("\n") for row in rows[:keep]):
            self._release_lock()
            raise RunDirError(f"resume={self.dir}: metrics.jsonl has {len(rows)} rows but the checkpoint was written "
                              f"after {keep}; the run directory was altered, so resuming would lose rows")
        tmp = self.dir / ".metrics.jsonl.tmp"
        tmp.write_text("".join(rows[:keep]))
        os.replace(tmp, self.metrics_path)  # a kill during resume leaves the old file or the cut one, never a mix
        self._rows = keep
        self._checkpoint_step = json.loads(rows[keep - 1])["step"] if keep else 0
        self._last_step = self._checkpoint_step
        self._resume_state = state

    def _read_init_source(self, source: Path) -> tuple[dict[str, Any], list[str]]:
        """The option-learning end state and metrics rows of ``source``, after checking that its config matches."""
        phase_end = source / "checkpoints" / "options.pt"
        try:
            if not phase_end.exists() or not (source / "config.yaml").exists():
                raise RunDirError(f"init_from={source}: no finished option learning there ({phase_end} and "
                                  "config.yaml are needed)")
            state = load_checked(phase_end)
            if state.get("format") != CHECKPOINT_FORMAT or "learner" not in state:
                raise CheckpointError(f"init_from={source}: {phase_end} has checkpoint format "
                                      f"{state.get('format')!r} without the learner state; this version reads "
                                      f"format {CHECKPOINT_FORMAT} phase-end checkpoints")
            differing = config_differences(OmegaConf.load(source / "config.yaml"), self.cfg, INIT_FROM_FREE_KEYS)
            if differing:
                raise RunDirError(f"init_from={source}: its option learning ran with other settings: "
                                  + "; ".join(differing))
            rows = (source / "metrics.jsonl").read_text().splitlines(keepends=True)
            if len(rows) < int(state["metrics_rows"]):
                raise RunDirError(f"init_from={source}: metrics.jsonl has {len(rows)} rows, {phase_end} was written "
                                  f"after {state['metrics_rows']}")
        except (RunDirError, CheckpointError):
            self._release_lock()
            raise
        return state, rows[: int(state["metrics_rows"])]

    def _start_from(self, state: dict[str, Any], rows: list[str]) -> None:
        self.metrics_path.write_text("".join(rows))
        self._rows = len(rows)
        self._last_step = json.loads(rows[-1])["step"] if rows else 0
        self._resume_state = state

    def _make_wandb(self) -> WandbSink:
        lcfg = self.cfg.logger
        run_id = (self.dir.name + "-" + str(abs(hash(str(self.dir))) % 10**8))[-64:]
        id_file = self.dir / "wandb_id.txt"
        if id_file.exists():
            run_id = id_file.read_text().strip()
        else:
            id_file.write_text(run_id)
        experiment = OmegaConf.select(self.cfg, "experiment.name", default=None)
        return WandbSink(
            self.dir,
            project=lcfg.get("project", "msol"),
            mode=lcfg.get("mode", "offline"),
            group=lcfg.get("group") or experiment or f"{self.cfg.env.name}",
            job_type=str(self.cfg.algo.name),
            tags=[str(self.cfg.env.name), f"seed{self.cfg.seed}"],
            config=OmegaConf.to_container(self.cfg, resolve=True),
            name=self.dir.name,
            run_id=run_id,
            init_timeout=float(lcfg.get("init_timeout", 30)),
        )

    def _acquire_lock(self):
        handle = open(self.dir / "run.lock", "a+")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise in_use_error(self.dir) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return handle

    def _release_lock(self) -> None:
        if getattr(self, "_lock_handle", None) is not None:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None


def in_use_error(run_dir: Path) -> RunDirError:
    return RunDirError(f"{run_dir} is in use by another training process (run.lock is held); "
                       "wait for it to finish or choose another run_dir")


def holds_checkpoint_error(run_dir: Path) -> RunDirError:
    return RunDirError(f"{run_dir} already holds a checkpoint; refusing to overwrite it. "
                       f"Use resume={run_dir} to continue it, or choose another run_dir.")


def refuse_busy_run_dir(run_dir: Path) -> None:
    """Raise :class:`RunDirError` if a fresh run may not start in ``run_dir`` (in use, or holding a checkpoint);
    writes nothing, so callers can check before anything (Hydra included) touches the directory."""
    if lock_is_held(run_dir):
        raise in_use_error(run_dir)
    if (Path(run_dir) / "checkpoints" / "latest.pt").exists():
        raise holds_checkpoint_error(run_dir)


def lock_is_held(run_dir: Path) -> bool:
    """Whether a training process holds ``run_dir``'s lock (checked without writing to the directory)."""
    path = Path(run_dir) / "run.lock"
    if not path.exists():
        return False
    with path.open("rb") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def to_json_value(value: Any) -> Any:
    """``value`` as strict JSON: tensors/arrays to numbers or lists, and NaN/inf to ``null`` (a mean over no
    episodes is missing, not a number; bare ``NaN`` is not JSON and breaks jq, JavaScript and strict parsers)."""
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    return value


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`to_json_value` that refuses any NaN/inf left over."""
    return json.dumps(to_json_value(value), allow_nan=False, **kwargs)


def config_differences(old: DictConfig, new: DictConfig, free: tuple[str, ...]) -> list[str]:
    """``key: old -> new`` for every resolved leaf that differs, except keys under a ``free`` prefix."""
    from msol.common.config_check import flat_leaves

    a, b = (flat_leaves(OmegaConf.to_container(c, resolve=True)) for c in (old, new))
    keys = sorted(k for k in a.keys() | b.keys()
                  if not any(k == f or k.startswith(f + ".") for f in free) and a.get(k) != b.get(k))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys]
