"""Stop at the first non-finite number instead of training on garbage."""

from __future__ import annotations

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
