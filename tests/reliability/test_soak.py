"""Soak: 105 short runs of random valid configs (every registered algorithm family, random sizes, rates,
coefficients, seeds and checkpoint timing); none may crash or produce a NaN/inf loss or final objective.

In-process ``train()`` with tiny budgets; ``make test-soak`` runs it (CI's second step).
Derandomised, so CI sees the same 100 configs every time; ``--hypothesis-seed`` explores others.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from cli_runs import metric_rows
from helpers import compose_cfg
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from msol.train import train

HIERARCHY = ["msol", "msol_frozen", "distral", "distral_action", "a2c", "ppo", "hard_options",
             "hard_options_primitives"]
DISCRETE_MULTITASK = ["moving_bandits", "taxi", "directional_taxi"]
OPTION_FRAMES = {"moving_bandits": 600_000, "taxi": 1_400_000, "directional_taxi": 4_000_000}  # per task, paper


def _budget(env: str, n_steps: int, envs_per_slot: int, updates: int = 40) -> str:
    """The budget_scale that gives about ``updates`` option-learning updates, whatever the batch size."""
    return f"budget_scale={updates * n_steps * envs_per_slot / OPTION_FRAMES[env]:.3g}"


def _floats(low: float, high: float) -> st.SearchStrategy[str]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.6g}")


def _log_floats(low: float, high: float) -> st.SearchStrategy[str]:
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: f"{10 ** e:.3g}")


FROZEN_OPTIONS = ("msol_frozen", "hard_options", "hard_options_primitives")  # algorithms with algo.frozen=true


@st.composite
def hierarchy_config(draw, algo: str) -> list[str]:
    env = draw(st.sampled_from(DISCRETE_MULTITASK))
    loss = draw(st.sampled_from(["a2c", "ppo"]))
    n_steps, envs_per_slot = draw(st.integers(1, 8)), draw(st.integers(1, 3))
    return [
        f"algo={algo}", f"env={env}", _budget(env, n_steps, envs_per_slot),
        f"env.hparams.num_options={draw(st.integers(1, 4))}",
        f"env.hparams.hidden=[{draw(st.sampled_from(['16', '32,16', '8,8,8']))}]",
        f"env.hparams.option_embedding={draw(st.integers(1, 16))}",
        f"env.hparams.num_slots={draw(st.integers(1, 3))}", f"env.hparams.envs_per_slot={envs_per_slot}",
        f"env.hparams.n_steps={n_steps}", f"env.hparams.lr={draw(_log_floats(1e-4, 3e-2))}",
        f"env.hparams.gamma={draw(_floats(0.5, 0.999))}", f"env.hparams.alpha={draw(_floats(0.5, 0.999))}",
        f"env.hparams.beta_start={draw(_floats(0, 0.5))}", f"env.hparams.beta_end={draw(_floats(0, 0.5))}",
        f"env.hparams.entropy_start={draw(_floats(0, 0.2))}", f"env.hparams.entropy_end={draw(_floats(0, 0.2))}",
        f"env.hparams.entropy_transfer={draw(_floats(0, 0.2))}",
        f"algo.loss={loss}", f"algo.optimizer={draw(st.sampled_from(['rmsprop', 'adam']))}",
        f"algo.max_grad_norm={draw(_log_floats(0.05, 50))}",
        f"eval.episodes_per_slot={draw(st.integers(1, 3))}",
        # settings the learner reads only in some configurations (the others refuse them: msol.common.settings)
        *([f"algo.ppo_epochs={draw(st.integers(1, 3))}", f"algo.ppo_minibatches={draw(st.integers(1, 4))}"]
          if loss == "ppo" else []),
        *([f"algo.greedy_options={draw(st.booleans())}".lower()] if algo in FROZEN_OPTIONS else []),
    ]


@st.composite
def baseline_config(draw, algo: str) -> list[str]:
    env = draw(st.sampled_from(DISCRETE_MULTITASK))
    envs_per_slot = draw(st.integers(1, 2))
    common = [f"algo={algo}", f"env={env}", f"env.hparams.num_slots={draw(st.integers(1, 3))}",
              f"env.hparams.envs_per_slot={envs_per_slot}", f"env.hparams.hidden=[{draw(st.integers(4, 32))}]",
              f"env.hparams.num_options={draw(st.integers(1, 4))}", f"algo.gamma={draw(_floats(0.5, 0.999))}"]
    if algo == "mlsh":
        # 1,200 option-learning frames per task; eval and log intervals scaled to a handful of rows
        return [*common, "budget_scale=0.0002", "env.hparams.eval_interval_frames_per_task=1000000",
                "env.hparams.log_interval_frames_per_task=200000", f"algo.rollout_steps={draw(st.integers(5, 40))}",
                f"algo.macro_duration={draw(st.integers(1, 10))}", f"algo.warmup={draw(st.integers(0, 3))}",
                f"algo.joint={draw(st.integers(1, 3))}", f"algo.master_lr={draw(_log_floats(1e-4, 3e-2))}",
                f"algo.sub_lr={draw(_log_floats(1e-5, 3e-3))}", f"algo.random_sub_prob={draw(_floats(0, 1))}",
                f"algo.ppo_epochs={draw(st.integers(1, 3))}", f"algo.sub_minibatches={draw(st.integers(1, 4))}"]
    n_steps = draw(st.integers(1, 8))
    return [*common, _budget(env, n_steps, envs_per_slot), f"algo.n_steps={n_steps}",
            f"algo.lr={draw(_log_floats(1e-4, 3e-2))}", f"algo.epsilon={draw(_floats(0, 1))}",
            f"algo.deliberation_cost={draw(_floats(0, 0.2))}", f"algo.entropy_coef={draw(_floats(0, 0.1))}"]


@st.composite
def single_env_config(draw, algo: str) -> list[str]:
    env = draw(st.sampled_from(["acrobot", "swimmer"]))
    width = draw(st.integers(4, 32))
    common = [f"algo={algo}", f"env={env}", "budget_scale=0.002" if env == "acrobot" else "budget_scale=0.001",
              f"algo.hidden=[{width},{width}]", f"algo.gamma={draw(_floats(0.5, 0.999))}",
              f"algo.lr={draw(_log_floats(1e-5, 1e-2))}"]
    if algo == "trpo":
        return [*common, f"algo.n_steps={draw(st.integers(32, 256))}", f"algo.batch_size={draw(st.integers(8, 64))}",
                f"algo.target_kl={draw(_log_floats(1e-3, 0.1))}", f"algo.n_critic_updates={draw(st.integers(1, 5))}"]
    return [*common, f"algo.rollout={draw(st.integers(1, 5))}", f"algo.batch_size={draw(st.integers(4, 32))}",
            f"algo.collect_steps={draw(st.integers(2, 20))}", f"algo.tau={draw(_floats(0, 0.1))}",
            f"algo.max_divergence={draw(_log_floats(1e-4, 1e-2))}"]


@st.composite
def sb3_config(draw, algo: str) -> list[str]:
    env = draw(st.sampled_from(["ess_defender", "ess_attacker"]))
    out = [f"algo={algo}", f"env={env}", "budget_scale=0.01", "algo.eval_games=20", "algo.obs_stats_steps=100",
           f"env.kwargs.K={draw(st.integers(3, 8))}", f"algo.hidden=[{draw(st.integers(4, 32))}]",
           f"algo.activation={draw(st.sampled_from(['tanh', 'relu']))}",
           f"algo.net={draw(st.sampled_from(['mlp', 'linear']))}", f"algo.lr={draw(_log_floats(1e-5, 1e-2))}"]
    if algo == "sb3_dqn":
        out += ["algo.kwargs.learning_starts=100", f"algo.kwargs.batch_size={draw(st.integers(4, 64))}"]
    return out


FAMILIES = {**dict.fromkeys(HIERARCHY, hierarchy_config), "mlsh": baseline_config, "option_critic": baseline_config,
            "trust_pcl": single_env_config, "trpo": single_env_config, "sb3_ppo": sb3_config, "sb3_a2c": sb3_config,
            "sb3_dqn": sb3_config}
RUNS_PER_ALGORITHM = 7  # x 15 algorithms = 105 runs


@pytest.mark.slow
@pytest.mark.parametrize("algo", sorted(FAMILIES))
def test_random_valid_configs_run_without_crash_or_nan(algo):
    """Every algorithm gets the same share of the runs (a hypothesis strategy choosing it would not guarantee it)."""

    # No shrinking: each step of it is a training run; the failing config is printed as drawn.
    @settings(max_examples=RUNS_PER_ALGORITHM, deadline=None, derandomize=True, database=None, print_blob=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])
    @given(overrides=FAMILIES[algo](algo), seed=st.integers(0, 2**16), checkpoint_interval=_log_floats(1e-4, 10))
    def runs_without_crash_or_nan(overrides, seed, checkpoint_interval):
        event(overrides[1])  # `--hypothesis-show-statistics` lists the envs it ran on
        _run_and_check(overrides, seed, checkpoint_interval)

    runs_without_crash_or_nan()


def _run_and_check(overrides: list[str], seed: int, checkpoint_interval: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cfg = compose_cfg(*overrides, f"seed={seed}", f"checkpoint_interval_s={checkpoint_interval}",
                          "logger.progress_bar=false", f"run_dir={run_dir}")
        summary = train(cfg)
        assert math.isfinite(float(summary["objective"])), summary
        assert json.loads((run_dir / "summary.json").read_text())["objective"] == summary["objective"]
        for row in metric_rows(run_dir):
            for key, value in row.items():
                if isinstance(value, float) and not key.startswith("return/"):  # mean return over 0 episodes: NaN
                    assert math.isfinite(value), (key, row)
