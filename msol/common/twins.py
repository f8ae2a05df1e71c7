"""Transfers that share another run's option learning (``algo.also_transfer``).

MSOL and MSOL(frozen) — and the hard-option baselines — "share the same training as they only differ during
testing" (paper): one run learns the options, then each listed algorithm transfers from its finished option-learning
phase (``init_from=``) into a run directory of its own, the one a separate run of that algorithm would have. Their
curves then differ only by the transfer, and the options are learned once.

A twin needs only the option-learning phase's end (``checkpoints/options.pt``), not the lead run's own transfer: to
use another core, start it in a second process as soon as that file exists (``algo=<twin> init_from=<lead run dir>
run_dir=<twin dir>``). The lead run then skips the twin while that process holds it, and skips it once it has
finished; a twin left unfinished is continued from its checkpoint.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from msol.common.config_check import ConfigError
from msol.common.run import lock_is_held


def twin_algo(cfg: DictConfig, name: str) -> DictConfig:
    """``cfg.algo`` with what ``configs/algo/<name>.yaml`` — and each algorithm between it and ``msol.yaml`` that it
    is defined on top of (hard_options_primitives → hard_options → msol) — sets (overrides of the first run are
    kept)."""
    chain = []
    current = name
    while current != "msol":
        path = files("msol.configs") / "algo" / f"{current}.yaml"
        if not path.is_file():
            raise ConfigError(f"algo.also_transfer: unknown algorithm {current!r}; valid: algorithms defined on top "
                              "of configs/algo/msol.yaml, e.g. msol_frozen, hard_options, hard_options_primitives")
        spec = OmegaConf.create(path.read_text())
        defaults = list(spec.get("defaults", []))
        if len(defaults) != 2 or defaults[1] != "_self_" or not isinstance(defaults[0], str) or len(chain) > 10:
            raise ConfigError(f"algo.also_transfer: {name} is not defined on top of msol.yaml; only those can "
                              "transfer from an MSOL run's option learning")
        chain.append(spec)
        current = defaults[0]
    algo = cfg.algo.copy()
    with open_dict(algo):
        for spec in reversed(chain):  # msol's direct child first, ``name`` last
            for key, value in spec.items():
                if key != "defaults":
                    algo[key] = value
        algo.also_transfer = []
    return algo


def twin_run_dir(run_dir: Path, algo: str, twin: str) -> Path:
    """Where the twin's run goes: ``run_dir`` with its ``<algo>`` path component replaced by ``<twin>`` (the layout of
    default and sweep directories), else the sibling ``<run_dir>_<twin>``."""
    parts = list(Path(run_dir).parts)
    if algo in parts:
        index = len(parts) - 1 - parts[::-1].index(algo)
        return Path(*parts[:index], twin, *parts[index + 1:])
    return Path(run_dir).with_name(f"{Path(run_dir).name}_{twin}")


def twin_configs(cfg: DictConfig, run_dir: Path) -> list[DictConfig]:
    """The config of each ``algo.also_transfer`` twin of the run in ``run_dir`` (a finished run of ``cfg``) that is
    left to train here: not finished, and not being trained by another process."""
    twins = []
    for name in cfg.algo.get("also_transfer", None) or []:
        where = twin_run_dir(run_dir, str(cfg.algo.name), str(name))
        if (where / "summary.json").exists():
            continue
        if lock_is_held(where):
            print(f"msol.train: twin {name} in {where} is being trained by another process; skipped", flush=True)
            continue
        twin = cfg.copy()
        with open_dict(twin):
            twin.algo = twin_algo(cfg, str(name))
            twin.run_dir = str(where)
            twin.init_from, twin.resume = str(run_dir), None
            if (where / "checkpoints" / "latest.pt").exists():  # an interrupted twin: continue it
                twin.init_from, twin.resume = None, str(where)
        twins.append(twin)
    return twins
