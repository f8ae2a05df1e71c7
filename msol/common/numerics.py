"""Stop at the first non-finite number instead of training on garbage (or saving it as a checkpoint)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch


class NumericalFault(FloatingPointError):
    """A NaN or inf appeared; the message names where. The last good checkpoint is kept."""


def check_finite(name: str, value: torch.Tensor) -> None:
    """Raise :class:`NumericalFault` naming ``name`` if ``value`` holds a NaN or inf."""
    if not bool(torch.isfinite(value).all()):
        bad = "NaN" if bool(torch.isnan(value).any()) else "inf"
        raise NumericalFault(f"{bad} in {name}")


def check_finite_grads(module: torch.nn.Module) -> None:
    for pname, param in module.named_parameters():
        if param.grad is not None:
            check_finite(f"gradient of {pname}", param.grad)


def check_finite_state(name: str, state: Any) -> None:
    """Raise :class:`NumericalFault` naming the first floating-point tensor of a nested state that is not finite.

    Python floats are left alone: metrics such as a mean return over no episodes are legitimately NaN.
    """
    if torch.is_tensor(state):
        if state.is_floating_point() or state.is_complex():
            check_finite(name, state)
    elif isinstance(state, Mapping):
        for key, value in state.items():
            check_finite_state(f"{name}.{key}", value)
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            check_finite_state(f"{name}[{index}]", value)


def check_finite_metric(name: str, value: Any) -> None:
    """A logged loss that is NaN/inf means the update that produced it was garbage."""
    if isinstance(value, str):
        return
    try:
        number = float(value)  # Python, numpy and one-element torch numbers alike
    except (TypeError, ValueError):
        return
    if not math.isfinite(number):
        raise NumericalFault(f"{'NaN' if math.isnan(number) else 'inf'} in {name}")


# torch's own reports of non-finite numbers, raised deep inside sampling before any check of ours could run.
_TORCH_NON_FINITE = ("probability tensor contains either `inf`, `nan` or element < 0", "found invalid values")


def as_numerical_fault(exc: BaseException) -> NumericalFault | None:
    """The :class:`NumericalFault` that ``exc`` really is (torch refusing NaN/inf), naming our innermost frame."""
    if not isinstance(exc, (RuntimeError, ValueError)) or not any(s in str(exc) for s in _TORCH_NON_FINITE):
        return None
    import traceback
    from pathlib import Path

    ours = [f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" not in f.filename
            and "/torch/" not in f.filename]
    where = f" in {Path(ours[-1].filename).parent.name}/{Path(ours[-1].filename).name}:{ours[-1].lineno} " \
            f"({ours[-1].name})" if ours else ""
    return NumericalFault(f"NaN/inf in the parameters of a distribution{where}: an observation or a network output "
                          f"is not finite ({str(exc).splitlines()[0]})")
