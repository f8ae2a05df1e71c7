"""Atomic, code-free, checksummed checkpoints.

A checkpoint is written to a temporary file in the same directory, flushed to disk and then renamed over the old
one, so a crash at any instant leaves either the previous complete checkpoint or the new complete one — never a
half-written file. Loading uses ``torch.load(weights_only=True)``: a checkpoint can hold tensors, numbers, strings,
lists and dicts, and never runs code from the file. A SHA-256 of the content (``sha256``) is stored inside and
checked on load, so a flipped byte in a tensor's storage is an error rather than silently different weights.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

_TMP_SUFFIX = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)
_SCALARS = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be trusted (truncated, tampered, or holding objects that would run code)."""


class WriteError(RuntimeError):
    """The machine refused a write (disk full, read-only file system, permission denied): one line naming the path
    and the cause. Nothing already written is lost: a checkpoint is replaced only by a complete new one."""


def write_error(path: Path, exc: BaseException) -> WriteError:
    cause = f"{exc.strerror} (errno {exc.errno})" if isinstance(exc, OSError) and exc.strerror else str(exc)
    if not isinstance(exc, OSError):  # torch.save on a full disk: "[enforce fail at inline_container.cc] ..."
        cause = f"{cause.splitlines()[0]} (the disk may be full)"
    return WriteError(f"cannot write {path}: {cause}")


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` (plus its ``sha256``) to ``path`` so that readers only ever see a complete file.

    Raises ``TypeError`` naming the first value that ``weights_only`` loading would refuse, at save time rather
    than when a run tries to resume.
    """
    path = Path(path)
    payload = dict(state)
    payload.pop("sha256", None)
    payload["sha256"] = content_digest(payload)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide checkpoints from the run directory's readers
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as exc:
        Path(tmp_name).unlink(missing_ok=True)
        raise write_error(path, exc) from exc
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checked(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_atomic`, turning every failure into one clear error."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # whatever a damaged file makes the unpickler raise
        refused = next((line.strip() for line in str(exc).splitlines() if "Unsupported global" in line), None)
        if isinstance(exc, pickle.UnpicklingError) and refused:
            raise CheckpointError(
                f"checkpoint {path} holds Python objects that would run code when loaded ({refused}); "
                "refused: checkpoints load with weights_only=True"
            ) from exc
        raise _unreadable(path, exc) from exc
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"checkpoint {path} has no 'format' field: it was not written by msol")
    stored = state.pop("sha256", None)
    if stored is None and int(state["format"]) >= 2:
        raise CheckpointError(f"checkpoint {path} has no 'sha256' field: tampered with, or not written by msol")
    if stored is not None and stored != content_digest(state):
        raise CheckpointError(f"checkpoint {path} does not match its checksum: its content was altered after it "
                              "was written (tampered or corrupted). Nothing was overwritten: restore the file or "
                              "start a new run")
    return state


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # torch's weights-only report starts with advice to load unsafely; its cause is the "WeightsUnpickler" part.
    detail = next((line for line in lines if line.startswith(("Unsupported", "WeightsUnpickler error:"))),
                  lines[0] if lines else "")
    return CheckpointError(
        f"checkpoint {path} is unreadable ({type(exc).__name__}: {detail}); it is truncated, tampered with, or not "
        "a msol checkpoint. Nothing was overwritten: restore the file or start a new run"
    )


def content_digest(state: Any) -> str:
    """SHA-256 of a checkpoint's content: every tensor's dtype, shape and bytes and every plain value, in key order."""
    digest = hashlib.sha256()
    _feed(digest, state, "state")
    return digest.hexdigest()


def _feed(digest: Any, value: Any, where: str) -> None:
    if torch.is_tensor(value):
        tensor = value.detach().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).cpu().numpy().tobytes())
    elif isinstance(value, Mapping):
        digest.update(f"D{len(value)}".encode())
        for key in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            digest.update(f"K{type(key).__name__}:{key!r}".encode())
            _feed(digest, value[key], f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        digest.update(f"L{len(value)}".encode())
        for index, item in enumerate(value):
            _feed(digest, item, f"{where}[{index}]")
    elif isinstance(value, _SCALARS):
        digest.update(f"S{type(value).__name__}:{value!r}".encode())
    else:
        raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}: a checkpoint holds "
                        "tensors, numbers, strings, lists and dicts only (it is loaded with weights_only=True); "
                        "convert it, e.g. numpy arrays with torch.as_tensor")


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files a writer killed mid-write left behind (call only while holding the run lock)."""
    stale = sorted(Path(directory).glob(f".*.pt.*{_TMP_SUFFIX}"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
