"""The typed settings of an algorithm: every shipped algo yaml matches its dataclass; added keys, missing settings,
bad values and ignored settings are refused with one line each."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from typing import ClassVar

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from msol.common.algorithms import available_algorithms
from msol.common.rules import POSITIVE, choice
from msol.common.settings import AlgorithmSettings, set_on_command_line, setting, settings_problems
from msol.soft_options.settings import SoftOptionsSettings


@dataclasses.dataclass(frozen=True)
class _Toy(AlgorithmSettings):
    yaml: ClassVar[str] = "configs/algo/toy.yaml"

    name: str = setting(choice("toy"))
    loss: str = setting(choice("a", "b"))
    lr: float = setting(POSITIVE)
    clip: float = setting(POSITIVE)

    @classmethod
    def ignored(cls, values):
        return {"clip": "with loss=a"} if values["loss"] == "a" else {}


def _algo(**values):
    return OmegaConf.create({"name": "toy", "loss": "a", "lr": 0.1, "clip": 0.2} | values)


def test_a_valid_config_has_no_problems_and_an_ignored_setting_is_refused_only_when_set():
    assert settings_problems(_Toy, _algo()) == []
    assert settings_problems(_Toy, _algo(), overrides=["algo.lr=0.1"]) == []
    assert settings_problems(_Toy, _algo(loss="b"), overrides=["algo.clip=0.3"]) == []
    assert settings_problems(_Toy, _algo(), overrides=["algo.clip=0.3"]) == [
        "algo.clip=0.2: algo=toy ignores it with loss=a; drop the override"]


def test_added_missing_and_bad_settings_are_named():
    added = _algo(cilp=0.3)
    assert settings_problems(_Toy, added) == [
        f"algo.cilp: not a setting of algo=toy; did you mean algo.clip? (its settings: {__name__}._Toy)"]
    missing = OmegaConf.create({"name": "toy", "loss": "a", "lr": 0.1})
    assert settings_problems(_Toy, missing) == [
        "algo=toy: configs/algo/toy.yaml gives no clip (every setting of _Toy needs a value there)"]
    assert settings_problems(_Toy, _algo(lr=-1.0, loss="c")) == [
        "algo.loss='c': valid: a, b", "algo.lr=-1.0: must be a number > 0"]


def test_overrides_name_top_level_algo_keys():
    assert set_on_command_line(["algo=ppo", "algo.lr=1", "+algo.x.y=2", "~algo.z", "env.hparams.lr=3"]) == {
        "lr", "x", "z"}


# every algorithm with typed settings, on envs of each action space it acts in (single-env learners: gym envs)
ENVS = {"trust_pcl": ("acrobot", "swimmer"), "trpo": ("acrobot", "swimmer"),
        **dict.fromkeys(("sb3_ppo", "sb3_a2c", "sb3_dqn", "ess_supervised", "ess_multiagent"),
                        ("ess_defender", "ess_attacker"))}
PAIRS = [(name, env) for name, spec in sorted(available_algorithms().items()) if spec.settings is not None
         for env in ENVS.get(name, ("moving_bandits", "taxi", "directional_swimmer"))
         if env not in ("swimmer", "directional_swimmer") or "continuous" in spec.action_spaces]


@pytest.mark.parametrize("algo, env", PAIRS)
def test_every_shipped_algo_yaml_matches_its_settings(algo, env):
    spec = available_algorithms()[algo]
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"env={env}", f"algo={algo}"])
    assert sorted(cfg.algo) == sorted(spec.settings.names())
    assert settings_problems(spec.settings, cfg.algo) == []


def test_every_algorithm_has_typed_settings():
    assert [name for name, spec in available_algorithms().items() if spec.settings is None] == []


def test_the_soft_options_learner_and_its_variants_share_one_settings_class():
    soft = {n for n, s in available_algorithms().items() if s.settings is SoftOptionsSettings}
    assert soft == {"msol", "msol_frozen", "distral", "distral_action", "hard_options", "hard_options_primitives",
                    "a2c", "ppo"}


def test_a_sweep_job_that_sets_an_ignored_setting_is_refused(tmp_path):
    env = dict(os.environ, WANDB_MODE="disabled")
    result = subprocess.run([sys.executable, "-m", "msol.train", "-m", "env=moving_bandits", "algo=ppo",
                             "algo.policy_coef=0.5", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                             "logger.progress_bar=false"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "msol.train: error: algo.policy_coef=0.5: algo=ppo ignores it with loss=ppo" in result.stderr
