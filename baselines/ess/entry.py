"""``algo=sb3_ppo | sb3_a2c | sb3_dqn | ess_supervised | ess_multiagent`` in ``python -m msol.train``.

The three ``sb3_*`` trainers work on any registered gymnasium environment with a flat Box observation; on the ESS
environments they also report the paper's metrics (:mod:`msol.baselines.ess.metrics`). Resume (``resume=<run dir>``)
restores the network weights (with their input statistics), the optimiser state and the step counter — so the
learning-rate schedule and the remaining budget carry on — and, for ``ess_supervised``, the visited observations.
It does not restore the environments' random streams or unfinished episodes, DQN's replay buffer (DQN refills it
from the resumed policy) or SB3's internal update counters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

from msol.baselines.ess.agents import agent_state, load_agent_state, make_agent, observation_stats, predictor
from msol.baselines.ess.callbacks import RunCallback
from msol.baselines.ess.metrics import defender_metrics, evaluate_attacker, evaluate_defender
from msol.baselines.ess.multiagent import SIDES, alternate, build_players
from msol.baselines.ess.settings import ESSMultiagentSettings, ESSSupervisedSettings, SB3AgentSettings
from msol.baselines.ess.supervised import VisitedObservations, train_supervised
from msol.common.algorithms import register_algorithm
from msol.common.run import Run
from msol.envs.ess import (
    ESSAttackerEnv,
    ESSDefenderEnv,
    PolicyAttacker,
    PolicyDefender,
    play_games,
    register_ess,
)
from msol.envs.ess.sampler import sample_start_states

SB3_ALGOS = {"sb3_ppo": "ppo", "sb3_a2c": "a2c", "sb3_dqn": "dqn"}
EVAL_SEED_OFFSET = 10_000  # evaluation games use their own seed: the same test games at every evaluation
GENERIC_EVAL_EPISODES = 20


def frame_budget(cfg: DictConfig) -> int:
    return max(1, round(float(cfg.algo.total_frames) * float(cfg.budget_scale)))


def env_factory(cfg: DictConfig) -> Callable[[], gym.Env]:
    if not cfg.env.get("id"):
        raise ValueError(f"env.id={cfg.env.get('id')!r}: the sb3 trainers need a gymnasium id, e.g. env.id=CartPole-v1")
    register_ess()
    try:  # the project's registry registers the other environments (absent while it is being written)
        importlib.import_module("msol.envs.registry")
    except ModuleNotFoundError as exc:
        if exc.name != "msol.envs.registry":
            raise
    env_id = str(cfg.env.id)
    kwargs = OmegaConf.to_container(cfg.env.kwargs, resolve=True) if cfg.env.get("kwargs") else {}
    return lambda: gym.make(env_id, **kwargs)


def make_model(cfg: DictConfig, env_fn: Callable[[], gym.Env], stats_env: gym.Env, seed_offset: int = 0
               ) -> BaseAlgorithm:
    a = cfg.algo
    seed = int(cfg.seed) + seed_offset
    vec_env = make_vec_env(env_fn, n_envs=int(a.n_envs), seed=seed)
    return make_agent(
        str(a.sb3_algo), vec_env, net=str(a.net), hidden=tuple(a.hidden), activation=str(a.activation),
        lr=float(a.lr), lr_schedule=str(a.lr_schedule), seed=seed, device=str(cfg.device),
        obs_stats=observation_stats(stats_env, int(a.obs_stats_steps), seed=seed),
        kwargs=OmegaConf.to_container(a.kwargs, resolve=True),
    )


def _prefixed(prefix: str, metrics: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}/{k}": v for k, v in metrics.items()}


def evaluate_model(model: Any, env: gym.Env, n_games: int, seed: int, opponents: list[str] = ()) -> dict[str, Any]:
    """Deterministic play of ``model`` (anything with SB3's ``predict``) on fresh games of ``env``'s kind: against
    the environment's own opponent, then against each named scripted ``opponents`` (metrics prefixed
    ``vs_<name>/``). Other environments get SB3's mean episode reward."""
    base = env.unwrapped
    play = predictor(model)
    if isinstance(base, ESSDefenderEnv):
        def run_against(attacker):
            return evaluate_defender(play, base.K, base.potential, attacker, n_games, seed, base.geo_ps)
    elif isinstance(base, ESSAttackerEnv):
        def run_against(defender):
            return evaluate_attacker(play, base.K, base.potential, defender, n_games, seed, base.geo_ps)
    else:
        mean, std = evaluate_policy(model, env, n_eval_episodes=min(n_games, GENERIC_EVAL_EPISODES))
        return {"mean_reward": float(mean), "std_reward": float(std)}
    opponent = base.attacker if isinstance(base, ESSDefenderEnv) else base.defender
    metrics = run_against(opponent)
    for name in opponents:
        metrics |= _prefixed(f"vs_{name}", run_against(name))
    return metrics


def _objective(metrics: dict[str, Any]) -> float:
    return float(metrics.get("win_rate", metrics.get("mean_reward", float("nan"))))


def _callback(cfg: DictConfig, run: Run, **kwargs: Any) -> RunCallback:
    return RunCallback(
        run, log_interval=int(cfg.logger.log_interval_frames_per_task),
        eval_interval=int(cfg.eval.interval_frames_per_task),
        checkpoint_interval_s=float(cfg.checkpoint_interval_s), **kwargs,
    )


def train_single(cfg: DictConfig, run: Run, visited: VisitedObservations | None = None
                 ) -> tuple[BaseAlgorithm, gym.Env, dict[str, Any]]:
    """Train one SB3 agent on ``cfg.env`` for the frame budget; returns the model, an evaluation env and the
    final evaluation."""
    env_fn = env_factory(cfg)
    eval_env = env_fn()
    model = make_model(cfg, env_fn, env_fn())
    resumed = run.load_checkpoint()
    if resumed is not None:
        load_agent_state(model, resumed["agent"])
        if visited is not None and "visited" in resumed:
            visited.restore(resumed["visited"].cpu().numpy())
    eval_seed = int(cfg.seed) + EVAL_SEED_OFFSET
    n_games = int(cfg.algo.eval_games)

    def state() -> dict[str, Any]:
        payload = {"agent": agent_state(model), "wall_time_s": run.elapsed()}
        if visited is not None:
            payload["visited"] = torch.as_tensor(visited.observations, device="cpu")
        return payload

    total = frame_budget(cfg)
    callback = _callback(cfg, run, phase="train", state=state,
                         evaluate=lambda: evaluate_model(model, eval_env, n_games, eval_seed))
    run.start_progress(total, initial=min(int(model.num_timesteps), total), desc=f"{cfg.algo.name} {cfg.env.name}")
    remaining = total - int(model.num_timesteps)
    if remaining > 0:
        callbacks = [callback] if visited is None else [callback, visited]
        model.learn(remaining, callback=callbacks, reset_num_timesteps=resumed is None)
    run.close_progress()
    run.save_checkpoint(state())
    opponents = list(cfg.env.get("eval_opponents") or [])
    final = evaluate_model(model, eval_env, n_games, eval_seed, opponents)
    run.log(int(model.num_timesteps), final, phase="final")
    return model, eval_env, final


def _train_sb3(cfg: DictConfig, run: Run) -> dict[str, Any]:
    if SB3_ALGOS.get(str(cfg.algo.name)) != str(cfg.algo.sb3_algo):
        raise ValueError(f"algo.sb3_algo={cfg.algo.sb3_algo!r} does not match algo={cfg.algo.name}; "
                         f"valid pairs: {SB3_ALGOS}")
    model, _, final = train_single(cfg, run)
    return final | {"frames": int(model.num_timesteps), "objective": _objective(final)}


for _name, _sb3_name in SB3_ALGOS.items():
    register_algorithm(_name, action_spaces=("discrete",), devices=("cpu", "cuda"), settings=SB3AgentSettings,
                       description=f"stable-baselines3 {_sb3_name.upper()} (linear or MLP policy)")(_train_sb3)


def _defender_env(cfg: DictConfig) -> ESSDefenderEnv:
    base = env_factory(cfg)().unwrapped
    if not isinstance(base, ESSDefenderEnv):
        raise TypeError(f"algo={cfg.algo.name} needs a defender environment (env=ess_defender); got env.id="
                         f"{cfg.env.id}")
    return base


@register_algorithm("ess_supervised", action_spaces=("discrete",), devices=("cpu", "cuda"),
                    settings=ESSSupervisedSettings)
def train_ess_supervised(cfg: DictConfig, run: Run) -> dict[str, Any]:
    """RL defender, then the same network trained to classify the optimal move on the states RL visited."""
    _defender_env(cfg)
    visited = VisitedObservations(int(cfg.algo.supervised.max_examples))
    model, eval_env, rl_final = train_single(cfg, run, visited)
    s = cfg.algo.supervised
    policy, fit = train_supervised(model, visited.observations, epochs=int(s.epochs), batch_size=int(s.batch_size),
                                   lr=float(s.lr), seed=int(cfg.seed))
    sup_final = evaluate_model(policy, eval_env, int(cfg.algo.eval_games), int(cfg.seed) + EVAL_SEED_OFFSET,
                               list(cfg.env.get("eval_opponents") or []))
    run.log(int(model.num_timesteps), sup_final | _prefixed("fit", fit), phase="supervised")
    return (_prefixed("rl", rl_final) | _prefixed("supervised", sup_final) | _prefixed("supervised_fit", fit)
            | {"frames": int(model.num_timesteps), "objective": _objective(rl_final)})


@register_algorithm("ess_multiagent", action_spaces=("discrete",), devices=("cpu", "cuda"),
                    settings=ESSMultiagentSettings)
def train_ess_multiagent(cfg: DictConfig, run: Run) -> dict[str, Any]:
    """Attacker and defender trained in alternation against each other's current policy (ESS paper §6)."""
    base = _defender_env(cfg)
    K, potential = base.K, base.potential
    players = build_players(K, potential, lambda fn, stats_env: make_model(cfg, fn, stats_env))
    rounds = int(cfg.algo.rounds)
    phase_frames = max(1, frame_budget(cfg) // rounds)
    resumed = run.load_checkpoint()
    start_phase = 0
    if resumed is not None:
        for side in SIDES:
            load_agent_state(players[side], resumed[side])
        start_phase = int(resumed["phases_done"])
    n_games, eval_seed = int(cfg.algo.eval_games), int(cfg.seed) + EVAL_SEED_OFFSET

    def step() -> int:
        return sum(int(players[side].num_timesteps) for side in SIDES)

    def state(phases_done: int) -> dict[str, Any]:
        return {side: agent_state(players[side]) for side in SIDES} | {
            "phases_done": phases_done, "wall_time_s": run.elapsed()}

    def head_to_head() -> dict[str, Any]:
        rng = np.random.default_rng(eval_seed)
        record = play_games(sample_start_states(K, potential, n_games, rng),
                            PolicyAttacker(predictor(players["attacker"])),
                            PolicyDefender(predictor(players["defender"])), rng)
        return _prefixed("learned_vs_learned", defender_metrics(record))

    def evaluate(side: str) -> dict[str, Any]:
        if side == "defender":
            scripted = {name: evaluate_defender(predictor(players["defender"]), K, potential, name, n_games,
                                                eval_seed) for name in ("disjoint_support", "optimal")}
        else:
            scripted = {"optimal": evaluate_attacker(predictor(players["attacker"]), K, potential, "optimal",
                                                     n_games, eval_seed)}
        out = head_to_head()
        for name, metrics in scripted.items():
            out |= _prefixed(f"{side}_vs_{name}", metrics)
        return out

    def callback(phase: int, side: str) -> RunCallback:
        other = players[SIDES[1 - SIDES.index(side)]]
        return _callback(cfg, run, phase=side, step_offset=int(other.num_timesteps),
                         evaluate=lambda: evaluate(side), state=lambda: state(phase))

    def on_phase_end(phase: int, side: str) -> None:
        run.log(step(), {"phase_index": phase} | evaluate(side), phase="phase_end")
        run.save_checkpoint(state(phase + 1))

    run.start_progress(2 * rounds * phase_frames, initial=min(step(), 2 * rounds * phase_frames),
                       desc=f"ess_multiagent K={K}")
    alternate(players, phases=2 * rounds, phase_frames=phase_frames, start_phase=start_phase,
              callback=callback, on_phase_end=on_phase_end)
    run.close_progress()
    final = evaluate("defender") | evaluate("attacker")
    run.log(step(), final, phase="final")
    return final | {"frames": step(), "objective": float(final["defender_vs_disjoint_support/win_rate"])}
