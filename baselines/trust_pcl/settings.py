"""The settings of ``algo=trust_pcl`` (``configs/algo/trust_pcl.yaml``): the loop's own (``total_frames``) and every
field of :class:`~msol.baselines.trust_pcl.algorithm.TrustPCLConfig`, the algorithm's typed configuration, whose
docstring and checks say what each is and must be (msol/common/settings.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from msol.baselines.trust_pcl.algorithm import TrustPCLConfig
from msol.common.rules import POSITIVE_INT
from msol.common.settings import AlgorithmSettings, setting


@dataclass(frozen=True)
class TrustPCLSettings(AlgorithmSettings):
    yaml: ClassVar[str] = "configs/algo/trust_pcl.yaml"

    name: str = setting((lambda v: v == "trust_pcl", "must be trust_pcl"))
    """The algorithm."""
    total_frames: int = setting(POSITIVE_INT)
    """Env steps of the run (× budget_scale)."""

    @classmethod
    def names(cls) -> list[str]:
        return [*super().names(), *(f.name for f in dataclasses.fields(TrustPCLConfig))]

    @classmethod
    def value_problems(cls, values: Mapping[str, Any]) -> list[str]:
        own = super().value_problems(values)
        try:
            TrustPCLConfig(**{f.name: values[f.name] for f in dataclasses.fields(TrustPCLConfig)})
        except (TypeError, ValueError) as exc:
            own.append(f"algo.{exc}")
        return own

    @classmethod
    def ignored(cls, values: Mapping[str, Any]) -> dict[str, str]:
        if values["max_divergence"] is None:
            return dict.fromkeys(("lambda_max", "lambda_smoothing", "kl_episodes"),
                                 "with max_divergence=null (λ stays at lambda_init: no trust region to solve for)")
        return {}
