"""``resume=<run dir>``: continue a run exactly as it was configured.

The run's own ``config.yaml`` is the truth. The command line may repeat its settings (the SLURM requeue recipe
passes the original overrides again) and may change only the keys that cannot change the results
(:data:`RESUME_FREE_KEYS`); any other difference is refused with one line naming the keys, before anything in the
run directory is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from msol.common.config_check import ConfigError
from msol.common.population import population_dirs
from msol.common.run import RESULT_NEUTRAL_KEYS, RunDirError, in_use_error, lock_is_held

RESUME_FREE_KEYS = RESULT_NEUTRAL_KEYS  # what a resume may change
# Config groups a command line may name; on resume each must name what the run already used.
_GROUP_NAME_KEYS = {"env": "env.name", "algo": "algo.name", "experiment": "experiment.name", "budget": "budget.name"}


class RunFinished(Exception):
    """The run directory holds a finished run (``summary.json``): there is nothing to resume."""


def resume_config(run_dir: Path, overrides: list[str]) -> DictConfig:
    """The saved config of ``run_dir`` with the allowed ``overrides`` applied (``resume=`` itself is skipped).

    Raises :class:`RunFinished` for a finished run, :class:`RunDirError` for a directory that cannot be resumed and
    :class:`ConfigError` when an override would change the run's results.
    """
    run_dir = Path(run_dir)
    config_path, latest = run_dir / "config.yaml", run_dir / "checkpoints" / "latest.pt"
    if lock_is_held(run_dir):
        raise in_use_error(run_dir)
    if all((member / "summary.json").exists() for member in population_dirs(run_dir)):
        raise RunFinished(f"{run_dir} is a finished run (summary.json is there); nothing to resume, nothing changed")
    if not latest.exists():
        raise RunDirError(f"resume={run_dir}: no checkpoint at {latest}; nothing to resume")
    if not config_path.exists():
        raise RunDirError(f"resume={run_dir}: no config.yaml there; this is not a complete msol run directory")
    saved = OmegaConf.load(config_path)
    changes: dict[str, Any] = {}
    differing: list[str] = []
    last = {o.key_or_group: o for o in _parse(overrides)}  # a key given twice: the later one counts, as in Hydra
    for override in last.values():
        key = override.key_or_group
        if key == "resume" or key.startswith("hydra") or override.is_hydra_override():
            continue
        value = override.value()
        if key == "logger":  # a logger group: its own keys are free (the log interval is the run's)
            changes.update(_logger_group(str(value)))
            continue
        current = OmegaConf.select(saved, _GROUP_NAME_KEYS.get(key, key), default=None)
        if key in _GROUP_NAME_KEYS:
            if value != current:
                differing.append(f"{key}: {current!r} in the run, {value!r} now")
        elif key in RESUME_FREE_KEYS:
            changes[key] = value
        elif value != current:
            differing.append(f"{key}: {current!r} in the run, {value!r} now")
    if differing:
        raise ConfigError(f"resume={run_dir}: refused, these settings differ from the run's own config.yaml (which "
                          f"is kept): {'; '.join(differing)}. A resume may change only: "
                          f"{', '.join(RESUME_FREE_KEYS)} (or logger=<name>)")
    cfg = saved
    with open_dict(cfg):
        for key, value in changes.items():
            OmegaConf.update(cfg, key, value, force_add=True)
        cfg.resume = str(run_dir)
    return cfg


def _parse(overrides: list[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:  # Hydra's parser names the override it cannot read
        raise ConfigError(f"cannot parse the overrides {' '.join(overrides)}: {str(exc).splitlines()[0]}") from exc


def _logger_group(name: str) -> dict[str, Any]:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        logger = compose("train", overrides=[f"logger={name}"]).logger
    return {f"logger.{k}": v for k, v in OmegaConf.to_container(logger, resolve=False).items()
            if f"logger.{k}" in RESUME_FREE_KEYS}
