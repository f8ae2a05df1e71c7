"""The typed env hyper-parameters cover every env config we ship."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import msol.configs
from msol.common.env_settings import HPARAM_RULES

ENV_CONFIGS = sorted((Path(msol.configs.__file__).parent / "env").glob("*.yaml"))


@pytest.mark.parametrize("path", ENV_CONFIGS, ids=[p.stem for p in ENV_CONFIGS])
def test_every_hyper_parameter_of_a_shipped_env_has_a_rule_its_value_meets(path):
    hparams = yaml.safe_load(path.read_text()).get("hparams") or {}
    assert set(hparams) <= set(HPARAM_RULES), set(hparams) - set(HPARAM_RULES)
    for key, value in hparams.items():
        valid, what = HPARAM_RULES[key]
        assert valid(value), (key, value, what)
