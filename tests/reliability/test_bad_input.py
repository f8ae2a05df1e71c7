"""Bad input: every config value is validated before anything runs; one line naming key, value and what is valid;
exit status 2; no traceback; nothing is created on disk.

Most cases drive the real CLI entry point (``msol.train.main``) in-process, which is what ``python -m msol.train``
runs, so the whole table costs seconds; a few run as real processes to check the exit status and stderr end to end.
"""

from __future__ import annotations

import re
import sys

import pytest
from cli_runs import TINY, run_cli
from helpers import compose_cfg
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from msol import train as train_module
from msol.common.algorithms import available_algorithms
from msol.common.config_check import ConfigError, validate_config

# (overrides, substrings the one-line error must contain: key, bad value, what is valid)
CASES = [
    # unknown names of config groups and algorithms
    (["env=nope"], ["unknown env 'nope'", "taxi"]),
    (["algo=nope"], ["unknown algo 'nope'", "msol"]),
    (["logger=nope"], ["unknown logger 'nope'", "wandb"]),
    (["experiment=nope"], ["unknown experiment 'nope'", "taxi"]),
    (["algo.name=nope"], ["algo.name='nope'", "unknown algorithm", "msol_frozen"]),
    (["algo.lrr=0.1"], ["algo.lrr=0.1", "no such config key", "did you mean algo.lr"]),
    # settings of the algorithm's typed settings (msol.common.settings): added keys, ignored settings
    (["+algo.polciy_coef=2"], ["algo.polciy_coef: not a setting of algo=msol", "did you mean algo.policy_coef"]),
    (["algo=ppo", "algo.policy_coef=2"], ["algo.policy_coef=2", "ignores it with loss=ppo"]),
    (["algo.gae_lambda=0.9"], ["algo.gae_lambda=0.9", "ignores it with loss=a2c"]),
    (["algo=ppo", "algo.rmsprop_alpha=0.9"], ["algo.rmsprop_alpha=0.9", "ignores it with optimizer=adam"]),
    (["env=acrobot", "algo=trust_pcl", "algo.max_divergence=null", "algo.lambda_max=10"],
     ["algo.lambda_max=10", "ignores it with max_divergence=null"]),
    (["env=acrobot", "algo=trpo", "+algo.target_kll=0.1"], ["algo.target_kll: not a setting of algo=trpo",
                                                            "did you mean algo.target_kl"]),
    (["env=gym", "algo=trust_pcl", "env.id=NoSuchEnv-v0"], ["env.id='NoSuchEnv-v0'", "not a registered"]),
    (["env=gym", "algo=trust_pcl"], ["env.id=None", "needs a gymnasium id"]),
    (["env=moving_bandits", "env.train_tasks=[goal0,goal7]"], ["env.train_tasks", "goal7", "valid: goal0, goal1"]),
    # wrong types
    (["algo.lr=abc"], ["algo.lr='abc'", "must be a number > 0"]),
    (["algo.frozen=maybe"], ["algo.frozen='maybe'", "true or false"]),
    (["algo.num_options=2.5"], ["algo.num_options=2.5", "integer >= 1"]),
    (["algo.hidden=64"], ["algo.hidden=64", "list of layer widths"]),
    (["seed=zero"], ["seed='zero'", "integer >= 0"]),
    (["logger.progress_bar=3"], ["logger.progress_bar=3", "true or false"]),
    (["algo.optimizer=sgd"], ["algo.optimizer='sgd'", "valid: rmsprop, adam"]),
    (["algo.loss=dqn"], ["algo.loss='dqn'", "valid: a2c, ppo"]),
    (["algo.phases=[options,bogus]"], ["algo.phases=", "bogus", "options, transfer, scratch"]),
    (["device=tpu"], ["device='tpu'", "cpu, cuda"]),
    (["device=cuda"], ["device=cuda", "no usable CUDA device here", "valid here: cpu"]),
    (["env=swimmer", "algo=trpo", "device=cuda:0"], ["device=cuda:0", "no usable CUDA device here", "valid here: cpu"]),
    (["logger=wandb", "logger.mode=onlin"], ["logger.mode='onlin'", "online, offline, disabled"]),
    (["algo=sb3_ppo", "env=ess_defender", "algo.activation=gelu"], ["algo.activation='gelu'", "tanh, relu"]),
    (["seed=0,1"], ["seed=0,1", "--multirun"]),
    (["algo.lr=["], ["algo.lr=[", "cannot parse"]),
    # sizes <= 0
    (["env.hparams.num_slots=0"], ["env.hparams.num_slots=0", "integer >= 1"]),
    (["algo.envs_per_slot=-2"], ["algo.envs_per_slot=-2", "integer >= 1"]),
    (["algo.n_steps=0"], ["algo.n_steps=0", "integer >= 1"]),
    (["algo.hidden=[64,0]"], ["algo.hidden=[64, 0]", "layer widths >= 1"]),
    (["eval.episodes_per_slot=0"], ["eval.episodes_per_slot=0", "integer >= 1"]),
    (["torch_threads=0"], ["torch_threads=0", "integer >= 1"]),
    (["budget_scale=0"], ["budget_scale=0", "> 0"]),
    (["checkpoint_interval_s=-1"], ["checkpoint_interval_s=-1", "> 0"]),
    (["algo.option_frames_per_task=0"], ["algo.option_frames_per_task=0", "frame count > 0"]),
    (["env=swimmer", "algo=trpo", "algo.batch_size=0"], ["algo.batch_size=0", "integer >= 1"]),
    (["algo=mlsh", "algo.rollout_steps=0"], ["algo.rollout_steps=0", "integer >= 1"]),
    (["env=ess_defender", "algo=sb3_dqn", "algo.kwargs.buffer_size=-5"], ["algo.kwargs.buffer_size=-5", ">= 1"]),
    # learning rates <= 0
    (["algo.lr=0"], ["algo.lr=0", "> 0"]),
    (["algo.lr=-1e-3"], ["algo.lr=-0.001", "> 0"]),
    (["env.hparams.lr=-1"], ["env.hparams.lr=-1", "> 0"]),
    (["algo=mlsh", "algo.master_lr=0"], ["algo.master_lr=0", "> 0"]),
    (["env=ess_defender", "algo=ess_supervised", "algo.supervised.lr=0"], ["algo.supervised.lr=0", "> 0"]),
    (["algo.lr=inf"], ["algo.lr=inf", "> 0"]),
    # probabilities outside [0, 1]
    (["algo.gamma=1.5"], ["algo.gamma=1.5", "probability in [0, 1]"]),
    (["algo.alpha=-0.1"], ["algo.alpha=-0.1", "probability in (0, 1)"]),
    (["algo.alpha=1"], ["algo.alpha=1", "probability in (0, 1), ends excluded"]),
    (["algo.gae_lambda=2"], ["algo.gae_lambda=2", "probability"]),
    (["algo=mlsh", "algo.random_sub_prob=1.1"], ["algo.random_sub_prob=1.1", "probability"]),
    (["algo=option_critic", "algo.epsilon=-0.5"], ["algo.epsilon=-0.5", "probability"]),
    (["env=ess_defender", "algo=sb3_ppo", "algo.kwargs.gamma=1.2"], ["algo.kwargs.gamma=1.2", "probability"]),
    (["env=ess_defender", "env.kwargs.disjoint_prob=2", "algo=sb3_ppo"],  # the env's constructor checks its kwargs
     ["env.kwargs=", "disjoint_prob=2", "probability"]),
    (["env=ess_defender", "+env.kwargs.potentail=0.5", "algo=sb3_ppo"], ["env.kwargs=", "potentail"]),
    (["env=directional_swimmer", "env.kwargs.action_noise_std=-1"], ["env.kwargs=", "action_noise_std=-1", ">= 0"]),
    (["algo.beta_start=-1"], ["algo.beta_start=-1", ">= 0"]),
    # option counts < 1
    (["algo.num_options=0"], ["algo.num_options=0", "integer >= 1"]),
    (["env.hparams.num_options=-3"], ["env.hparams.num_options=-3", "integer >= 1"]),
    (["algo=mlsh", "algo.num_subs=0"], ["algo.num_subs=0", "integer >= 1"]),
    (["algo=option_critic", "algo.num_options=0"], ["algo.num_options=0", "integer >= 1"]),
    # incompatible combinations
    (["env=directional_swimmer", "algo=distral_action"],
     ["algo=distral_action", "env=directional_swimmer", "continuous", "discrete"]),
    (["env=swimmer", "algo=mlsh"], ["algo=mlsh", "continuous", "supports only discrete"]),
    (["env.action_space=continuous", "algo=option_critic"], ["algo=option_critic", "continuous", "discrete"]),
    (["env=acrobot", "algo=msol"], ["algo=msol cannot run with env=acrobot", "the config has no env.hparams."]),
]


def _main(monkeypatch, capsys, tmp_path, args: list[str]) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["msol.train", *args, f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stop:
        train_module.main()
    return stop.value.code, capsys.readouterr().err


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_value_is_one_clear_line_and_exit_2(monkeypatch, capsys, tmp_path, args, expected):
    code, err = _main(monkeypatch, capsys, tmp_path, args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("msol.train: error: "), err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert list(tmp_path.iterdir()) == [], "bad input must not create anything (no run dir, no Hydra output)"


def test_several_bad_values_are_all_listed(monkeypatch, capsys, tmp_path):
    code, err = _main(monkeypatch, capsys, tmp_path, ["algo.lr=-1", "algo.gamma=2", "algo.num_options=0"])
    assert code == 2
    for text in ("algo.lr=-1", "algo.gamma=2", "algo.num_options=0"):
        assert text in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args, expected", [
    (["env=nope"], "unknown env 'nope'"),
    (["env=moving_bandits", "algo.lr=-1"], "algo.lr=-1: must be a number > 0"),
    (["env=directional_swimmer", "algo=distral_action"], "supports only discrete"),
])
def test_cli_process_exits_2_without_traceback(tmp_path, args, expected):
    result = run_cli(*args, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_resume_of_a_directory_without_checkpoint_is_refused(tmp_path):
    result = run_cli(*TINY, f"resume={tmp_path / 'never_ran'}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "no checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_python_api_validates_too():
    with pytest.raises(ConfigError, match=r"algo\.lr=-1: must be a number > 0"):
        train_module.train(compose_cfg("algo.lr=-1"))


# One algorithm per family of configs (the others are the same config files with a few values changed).
FAMILIES = ("msol", "mlsh", "option_critic", "trust_pcl", "trpo", "sb3_ppo", "sb3_dqn", "ess_supervised",
            "ess_multiagent")


def _one_config_per_algorithm():
    """Each algorithm family with the first shipped env it composes and runs with."""
    preferred = ["moving_bandits", "swimmer", "ess_defender"]  # cheap to compose, cover every family
    envs = preferred + [e for e in train_module.config_options("env") if e not in preferred]
    configs = []
    for algo, spec in available_algorithms().items():
        if algo not in FAMILIES:
            continue
        for env in envs:
            cfg = compose_cfg(f"env={env}", f"algo={algo}", "logger=wandb")
            if _resolves(cfg) and cfg.env.get("action_space") in (None, *spec.action_spaces) and cfg.env.get("id"):
                configs.append((algo, cfg))
                break
    return configs


def _resolves(cfg) -> bool:
    """False when the env does not provide what the algorithm's config reads (e.g. env.hparams.num_options)."""
    try:
        OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError:
        return False
    return True


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix, node


def test_every_typed_value_of_every_algorithm_config_is_checked():
    """Setting any number, flag or list of any shipped config to a word is refused (naming that key)."""
    configs = _one_config_per_algorithm()
    assert {a for a, _ in configs} == set(FAMILIES)
    validate_config(configs[0][1])
    for algo, cfg in configs:
        defaults = cfg.copy()
        validate_config(cfg, defaults=defaults)  # the shipped config itself is valid
        for path, value in _leaves(OmegaConf.to_container(cfg, resolve=True)):
            if path.startswith("hydra") or isinstance(value, str) or value is None:
                continue
            bad = cfg.copy()
            OmegaConf.update(bad, path, "bogus", force_add=True)
            with pytest.raises(ConfigError, match=re.escape(f"{path}='bogus'")):
                validate_config(bad, defaults=defaults)


def test_bad_input_found_late_by_an_algorithm_is_one_line_too(tmp_path):
    """A ValueError from an algorithm's own check (here MLSH refusing a phase it has no meaning for)."""
    result = run_cli("env=moving_bandits", "algo=mlsh", "algo.phases=[scratch]", f"run_dir={tmp_path / 'run'}",
                     "logger.progress_bar=false", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("msol.train: error: algo.phases: 'scratch' is not an MLSH phase"), result.stderr[-2000:]
    assert "(raised at entry.py:" in line and "Traceback" not in result.stderr
