"""Helpers shared by the test folders (``from helpers import ...``: pytest puts ``tests/`` on the path for its
``conftest.py``)."""

from __future__ import annotations

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

# Keys of metrics rows and summaries that measure time, which two runs of one seed never share.
TIMING_KEYS = {"fps", "wall_time_s", "finished_at"}


def compose_cfg(*overrides: str, hydra: bool = False) -> DictConfig:
    """The training config ``python -m msol.train <overrides>`` would run (with Hydra's own node if ``hydra``)."""
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=hydra)
