"""Value rules of config keys: ``(predicate, what is valid)``, shared by the global key rules
(``msol.common.config_check``) and the typed settings of algorithms (``msol.common.settings``)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


Rule = tuple[Callable[[Any], bool], str]  # (is the value valid?, what is valid)
POSITIVE_INT: Rule = (lambda v: is_int(v) and v >= 1, "must be an integer >= 1")
NON_NEGATIVE_INT: Rule = (lambda v: is_int(v) and v >= 0, "must be an integer >= 0")
POSITIVE: Rule = (lambda v: is_number(v) and v > 0, "must be a number > 0")
NON_NEGATIVE: Rule = (lambda v: is_number(v) and v >= 0, "must be a number >= 0")
PROBABILITY: Rule = (lambda v: is_number(v) and 0 <= v <= 1, "must be a probability in [0, 1]")
BOOL: Rule = (lambda v: isinstance(v, bool), "must be true or false")
FRAMES: Rule = (lambda v: is_number(v) and v > 0, "must be a frame count > 0")
# the fixed termination prior p(b=1) = 1 - alpha enters a log: 0 and 1 are excluded
OPEN_PROBABILITY: Rule = (lambda v: is_number(v) and 0 < v < 1, "must be a probability in (0, 1), ends excluded")
def text(what: str) -> Rule:
    """A non-empty string; ``what`` says which (a name, a path, ...)."""
    return (lambda v: isinstance(v, str) and bool(v), what)


NAME: Rule = text("must be a non-empty name")
ALGORITHM_NAMES: Rule = (lambda v: isinstance(v, list) and all(isinstance(n, str) and n for n in v),
                         "must be a list of algorithm names (e.g. [msol_frozen])")


def choice(*valid: str) -> Rule:
    """One of ``valid``."""
    return (lambda v: v in valid, f"valid: {', '.join(valid)}")


def optional(rule: Rule) -> Rule:
    """``rule``, or null."""
    return (lambda v: v is None or rule[0](v), f"{rule[1]}, or null")


LAYERS: Rule = (lambda v: isinstance(v, (list, tuple)) and bool(v) and all(is_int(w) and w >= 1 for w in v),
                "must be a non-empty list of layer widths >= 1, e.g. [512, 256, 512]")
PHASES: Rule = (lambda v: isinstance(v, list) and bool(v) and all(p in ("options", "transfer", "scratch") for p in v),
                "must be a non-empty list of: options, transfer, scratch")
DEVICE: Rule = (lambda v: isinstance(v, str) and (v in ("cpu", "cuda") or re.fullmatch(r"cuda:\d+", v) is not None),
                "valid: cpu, cuda, cuda:<index>")
TASKS: Rule = (lambda v: v == "all" or (isinstance(v, list) and bool(v) and all(isinstance(t, str) for t in v)),
               "must be 'all' or a non-empty list of task names")
