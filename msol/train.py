"""Training entry point: ``python -m msol.train env=taxi algo=msol`` (or the ``msol-train`` script).

Hydra composes the config from ``configs/`` (groups ``env/``, ``algo/``, ``logger/``, ``experiment/``); this module
validates it, opens the run directory and hands both to the registered algorithm. ``resume=<run dir>`` continues an
interrupted run from its last checkpoint.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from msol.algorithms import get_algorithm
from msol.checkpoint import CheckpointError
from msol.config_check import ConfigError, validate_config
from msol.numerics import NumericalFault
from msol.run import Run, RunDirError

log = logging.getLogger(__name__)

# ``hydra.run.dir`` uses this so that ``resume=<dir>`` reopens that directory instead of making a new one.
if not OmegaConf.has_resolver("msol_run_dir"):
    OmegaConf.register_new_resolver("msol_run_dir", lambda resume, default: resume if resume else default)


def train(cfg: DictConfig, run_dir: Path | None = None) -> dict:
    """Train the configured algorithm; returns its final summary. Usable from Python as well as from the CLI."""
    validate_config(cfg)
    torch.set_num_threads(int(cfg.torch_threads))
    if cfg.resume:
        run_dir = Path(str(cfg.resume))
    elif cfg.get("run_dir"):
        run_dir = Path(str(cfg.run_dir))
    elif run_dir is None:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
    algo = get_algorithm(str(cfg.algo.name))
    run = Run(cfg, run_dir, resume=bool(cfg.resume))
    try:
        summary = algo.train(cfg, run)
    except BaseException:
        run.abort(exit_code=1)
        raise
    run.finish(summary)
    return summary


@hydra.main(version_base="1.3", config_path="pkg://configs", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    try:
        summary = train(cfg)
    except (ConfigError, RunDirError, CheckpointError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"msol.train: error: {msg}", file=sys.stderr)
        sys.exit(2)
    except NumericalFault as exc:
        print(f"msol.train: numerical fault: {exc}", file=sys.stderr)
        sys.exit(3)
    # Returned to Hydra so sweepers can optimise over it.
    value = summary.get("objective")
    return float(value) if value is not None else None


def check_group_overrides(argv: list[str]) -> None:
    """Reject ``env=``/``algo=``/``logger=``/``experiment=`` names that have no config, before Hydra starts.

    Hydra would also fail, but with exit status 1 and a traceback-style report; a typo deserves one line and 2.
    """
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key not in CONFIG_GROUPS:
            continue
        valid = config_options(key)
        for name in filter(None, value.split(",")):
            if name not in valid and name != "null":
                print(f"msol.train: error: unknown {key} {name!r}; valid: {', '.join(valid)}", file=sys.stderr)
                sys.exit(2)


CONFIG_GROUPS = ("env", "algo", "logger", "experiment")


def config_options(group: str) -> list[str]:
    """Names of the configs of ``group`` shipped in the ``configs`` package."""
    from importlib.resources import files

    folder = files("configs") / group
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def main() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    check_group_overrides(sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
