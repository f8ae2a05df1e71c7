"""Atomic, code-free checkpoints.

A checkpoint is written to a temporary file in the same directory, flushed to disk and then renamed over the old
one, so a crash at any instant leaves either the previous complete checkpoint or the new complete one — never a
half-written file. Loading uses ``torch.load(weights_only=True)``: a checkpoint can hold tensors, numbers, strings,
lists and dicts, and never runs code from the file.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be trusted (truncated, tampered, or holding objects that would run code)."""


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` so that readers only ever see a complete file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checked(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic`, turning every failure into one clear error."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "it is truncated, tampered with, or not a msol checkpoint. Nothing was overwritten: start a new run "
            "or restore the file."
        ) from exc
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"checkpoint {path} has no 'format' field: it was not written by msol")
    return state


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
