"""MLSH on a batched multitask env: one phase (option learning or transfer) as ``iterate`` = schedule → collect → update.

Option learning: each task slot runs MLSH's cycle — draw a task and re-initialise the slot's master, ``warmup``
iterations updating only the master, ``joint`` iterations updating master and sub-policies (sub-policy updates use
the data of the slots in their joint iterations only). Transfer: sub-policies frozen, every slot a fresh master on
its transfer task, masters trained for the whole phase. Frames are counted per task slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from baselines.mlsh.losses import (
    group_mean,
    group_minibatches,
    macro_gae,
    normalize_per_group,
    ppo_terms,
    schedule,
    slot_offsets,
)
from baselines.mlsh.networks import MLSHPolicy
from baselines.mlsh.probe import diversity_metrics, sub_policy_destinations
from baselines.mlsh.storage import MLSHRollout
from msol.envs_adapter import MultitaskEnv, make_env
from msol.figures import plot_option_map
from msol.losses import gae_advantages
from msol.numerics import check_finite
from msol.protocol import PhaseSpec, draw_slot_task, episode_row, evaluate_episodes, mean_stats
from msol.run import Run

PROBE_LAYOUTS = 32  # goal layouts of the Moving Bandits diversity probe


@dataclass
class Decision:
    """One step of every env: the sub-policy in force, whether the master chose it now, and the action."""

    z: torch.Tensor
    decide: torch.Tensor
    master_logp: torch.Tensor
    master_value: torch.Tensor
    action: torch.Tensor
    sub_logp: torch.Tensor
    sub_value: torch.Tensor


@torch.no_grad()
def mlsh_step(policy: MLSHPolicy, obs: torch.Tensor, slot: torch.Tensor, z_prev: torch.Tensor,
              decide: torch.Tensor, random_sub_prob: float, greedy: bool = False) -> Decision:
    """Where ``decide``: the slot's master picks ``z`` (replaced by a uniform one with ``random_sub_prob``, as the
    MLSH code does); elsewhere ``z`` continues. Then the shared sub-policy ``z`` acts. ``greedy``: argmax of master
    and sub-policy, no random sub-policy (evaluation episodes with ``eval.greedy``)."""
    master, master_value = policy.master(obs, slot)
    if greedy:
        z_new = master.logits.argmax(-1)
    else:
        z_new = master.sample()
        explore = torch.rand(z_new.shape) < random_sub_prob
        z_new = torch.where(explore, torch.randint(policy.num_subs, z_new.shape), z_new)
    z = torch.where(decide, z_new, z_prev)
    sub, sub_value = policy.sub(obs, z)
    action = sub.logits.argmax(-1) if greedy else sub.sample()
    return Decision(z, decide, master.log_prob(z), master_value, action, sub.log_prob(action), sub_value)


class MLSHPhase:
    """One protocol phase of MLSH (see the module docstring); implements ``PhaseLearner``."""

    def __init__(self, cfg: DictConfig, spec: PhaseSpec, env: MultitaskEnv, policy: MLSHPolicy) -> None:
        self.a = SimpleNamespace(**OmegaConf.to_container(cfg.algo, resolve=True))
        self.cfg, self.spec, self.env, self.model = cfg, spec, env, policy
        self.transfer = spec.name == "transfer"
        self.num_envs, self.num_slots = env.num_envs, spec.num_slots
        self.slot = torch.as_tensor(env.slot_of_env, dtype=torch.long)
        self.T, self.N = int(self.a.rollout_steps), int(self.a.macro_duration)
        self.storage = MLSHRollout.allocate(self.T, self.num_envs, env.obs_dim)
        # Created once per phase and never reset with a master (a code fact of MLSH, spec/baselines.md).
        self.master_opt = torch.optim.Adam(policy.master_parameters(), lr=self.a.master_lr, eps=self.a.adam_eps,
                                           foreach=True)
        self.sub_opt = None if self.transfer else torch.optim.Adam(
            policy.sub_parameters(), lr=self.a.sub_lr, eps=self.a.adam_eps, foreach=True)
        cycle = int(self.a.warmup) + int(self.a.joint)
        self.offsets = slot_offsets(self.num_slots, cycle, bool(self.a.stagger_slots))
        self.iteration = 0
        self.frames = 0
        self.obs = torch.zeros(self.num_envs, env.obs_dim)
        self.z = torch.zeros(self.num_envs, dtype=torch.long)
        self.since_decision = torch.zeros(self.num_envs, dtype=torch.long)
        self.first = torch.ones(self.num_envs, dtype=torch.bool)
        self.episodes: list[tuple[int, float]] = []
        self.update_stats: list[dict[str, float]] = []
        self.probe_env = (make_env(cfg, [env.tasks[0]], mode="train", envs_per_slot=PROBE_LAYOUTS, seed=cfg.seed)
                          if "MovingBandits" in str(cfg.env.id) else None)

    # ------------------------------------------------------------------ PhaseLearner
    def start(self, seed: int) -> None:
        self.obs = torch.as_tensor(self.env.reset(seed=seed), dtype=torch.float32)
        self.first[:] = True

    def iterate(self) -> None:
        joint = self.begin_iteration()
        self.collect()
        self.update(joint)
        self.iteration += 1

    def begin_iteration(self) -> torch.Tensor:
        """Apply the W/U schedule: new tasks and fresh masters where a cycle starts; returns the joint slots."""
        joint = torch.zeros(self.num_slots, dtype=torch.bool)
        if self.transfer:
            return joint
        for slot in range(self.num_slots):
            new_task, joint[slot] = schedule(self.iteration, self.offsets[slot], int(self.a.warmup),
                                             int(self.a.joint))
            if new_task:
                self.model.reset_master(slot)
                task = draw_slot_task(list(self.spec.tasks), self.env.slot_tasks, slot, "uniform")
                env_idx, obs = self.env.assign_task(slot, task)
                self.obs[env_idx] = torch.as_tensor(obs, dtype=torch.float32)
                self.first[env_idx] = True
        return joint

    def collect(self) -> None:
        st = self.storage
        for t in range(self.T):
            # The master decides every N steps, at episode starts, and at the first step of every rollout (so each
            # rollout's last macro step bootstraps from a decision state).
            decide = self.first | (self.since_decision >= self.N) | (t == 0)
            step = mlsh_step(self.model, self.obs, self.slot, self.z, decide, float(self.a.random_sub_prob))
            st.obs[t], st.decide[t], st.z[t], st.action[t] = self.obs, decide.float(), step.z, step.action
            st.sub_logp[t], st.sub_value[t] = step.sub_logp, step.sub_value
            st.master_logp[t], st.master_value[t] = step.master_logp, step.master_value
            out = self.env.step(step.action.numpy())
            st.reward[t], st.terminated[t], st.truncated[t] = out.tensors()
            st.sub_bootstrap[t], st.master_bootstrap[t] = 0.0, 0.0
            if (cut := out.truncated_final_obs()) is not None:
                idx, final = cut
                with torch.no_grad():
                    st.sub_bootstrap[t, idx] = self.model.sub(final, step.z[idx])[1]
                    st.master_bootstrap[t, idx] = self.model.master(final, self.slot[idx])[1]
            for env_index, ret in out.episode_returns:
                self.episodes.append((int(self.slot[env_index]), ret))
            self.obs = torch.as_tensor(out.obs, dtype=torch.float32)
            self.z = step.z
            self.since_decision = torch.where(decide, 1, self.since_decision + 1)
            self.first = torch.as_tensor(out.terminated | out.truncated)
        self.frames += self.T * self.num_envs // self.num_slots

    # ------------------------------------------------------------------ update
    def update(self, joint: torch.Tensor) -> None:
        st, a = self.storage, self.a
        check_finite("observations", st.obs)
        with torch.no_grad():
            last_master_value = self.model.master(self.obs, self.slot)[1]
            last_sub_value = self.model.sub(self.obs, self.z)[1]
        stats = self._update_masters(last_master_value)
        stats["joint_slots"] = joint.float().mean().item()
        env_joint = joint[self.slot]
        if self.sub_opt is not None and env_joint.any():
            sub_adv = gae_advantages(st.reward, st.sub_value, st.terminated, st.truncated, st.sub_bootstrap,
                                     last_sub_value, a.gamma, a.gae_lambda)
            rows = env_joint.expand(self.T, -1).flatten()
            stats.update(self._update_subs(rows, sub_adv.flatten()))
        usage = torch.bincount(st.z.flatten(), minlength=self.model.num_subs).float() / st.z.numel()
        stats.update({f"option_usage/{k}": usage[k].item() for k in range(self.model.num_subs)})
        self.update_stats.append(stats)

    def _update_masters(self, last_value: torch.Tensor) -> dict[str, float]:
        """PPO on every slot's master over its macro steps (minibatches of its own rows)."""
        st, a = self.storage, self.a
        adv, macro_reward = macro_gae(st.reward, st.decide, st.terminated, st.truncated, st.master_value,
                                      st.master_bootstrap, last_value, a.gamma, a.gae_lambda)
        rows = st.decide.flatten() > 0
        obs, z = st.obs.flatten(0, 1)[rows], st.z.flatten()[rows]
        old_logp, old_value = st.master_logp.flatten()[rows], st.master_value.flatten()[rows]
        adv = adv.flatten()[rows]
        returns = adv + old_value
        slot = self.slot.expand(self.T, -1).flatten()[rows]
        adv = normalize_per_group(adv, slot, self.num_slots)
        stats: list[dict[str, float]] = []
        for _ in range(int(a.ppo_epochs)):
            for idx in group_minibatches(slot, self.num_slots, batch_size=int(a.master_batch_size)):
                dist, value = self.model.master(obs[idx], slot[idx])
                L_pi, L_V = ppo_terms(dist.log_prob(z[idx]), old_logp[idx], adv[idx], value, old_value[idx],
                                      returns[idx], a.ppo_clip)
                self._step(self.master_opt, group_mean(L_pi + L_V, slot[idx], self.num_slots))
                stats.append({"master/loss_policy": L_pi.mean().item(), "master/loss_value": L_V.mean().item(),
                              "master/entropy": dist.entropy().mean().item()})
        out = mean_stats(stats)
        out["master/macro_reward"] = macro_reward.flatten()[rows].mean().item()
        return out

    def _update_subs(self, rows: torch.Tensor, adv: torch.Tensor) -> dict[str, float]:
        """PPO on each shared sub-policy over the steps it acted in the joint slots (15 minibatches per epoch)."""
        st, a = self.storage, self.a
        obs, z, action = st.obs.flatten(0, 1)[rows], st.z.flatten()[rows], st.action.flatten()[rows]
        old_logp, old_value = st.sub_logp.flatten()[rows], st.sub_value.flatten()[rows]
        adv = adv[rows]
        returns = adv + old_value
        m = self.model.num_subs
        adv = normalize_per_group(adv, z, m)
        stats: list[dict[str, float]] = []
        for _ in range(int(a.ppo_epochs)):
            for idx in group_minibatches(z, m, num_batches=int(a.sub_minibatches)):
                dist, value = self.model.sub(obs[idx], z[idx])
                L_pi, L_V = ppo_terms(dist.log_prob(action[idx]), old_logp[idx], adv[idx], value, old_value[idx],
                                      returns[idx], a.ppo_clip)
                self._step(self.sub_opt, group_mean(L_pi + L_V, z[idx], m))
                stats.append({"sub/loss_policy": L_pi.mean().item(), "sub/loss_value": L_V.mean().item(),
                              "sub/entropy": dist.entropy().mean().item()})
        return mean_stats(stats)

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        check_finite("loss", loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # ------------------------------------------------------------------ logging, evaluation, checkpoints
    def pop_log_row(self) -> dict[str, float]:
        row = mean_stats(self.update_stats)
        row.update(episode_row(self.episodes, self.env.slot_tasks))
        row["iteration"] = self.iteration
        self.episodes, self.update_stats = [], []
        return row

    def finish_phase(self, run: Run) -> dict[str, float]:
        """The sub-policy map of this phase on grid envs (``msol.figures.plot_option_map``: the sub-policy each task's
        master picks on each cell; MLSH has no terminations, its master re-decides every N steps). The Moving
        Bandits diversity probe runs with every evaluation."""
        def choose(obs: torch.Tensor, slot: int) -> tuple[np.ndarray, None]:
            master, _ = self.model.master(obs, torch.full((obs.shape[0],), slot, dtype=torch.long))
            return master.logits.argmax(-1).numpy(), None

        figure = plot_option_map(self.env, run.dir / "figures" / f"options_{self.spec.name}.png", choose,
                                 self.model.num_subs, name="sub-policy")
        if figure is not None:
            run.log_image(f"figures/options_{self.spec.name}", figure)
        return {}

    def evaluate(self, env: MultitaskEnv, seed: int) -> dict[str, float]:
        """One episode per eval env with each slot's current task and master (greedy with ``eval.greedy``, as MSOL's
        evaluation; the row's ``greedy`` column says which); plus the diversity probe."""
        greedy = bool(self.cfg.eval.greedy)
        z = torch.zeros(env.num_envs, dtype=torch.long)
        since = torch.zeros(env.num_envs, dtype=torch.long)
        slot = torch.as_tensor(env.slot_of_env, dtype=torch.long)

        def act(obs: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
            nonlocal z, since
            decide = (first > 0) | (since >= self.N)
            step = mlsh_step(self.model, obs, slot, z, decide, float(self.a.random_sub_prob), greedy=greedy)
            z, since = step.z, torch.where(decide, 1, since + 1)
            return step.action

        row = evaluate_episodes(env, seed=seed, slot_tasks=self.env.slot_tasks, act=act)
        row["greedy"] = float(greedy)
        if self.probe_env is not None:
            row.update(diversity_metrics(*sub_policy_destinations(self.model, self.probe_env, seed=seed)))
        return row

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "master_opt": self.master_opt.state_dict(),
                "sub_opt": self.sub_opt.state_dict() if self.sub_opt is not None else {},
                "iteration": self.iteration, "frames": self.frames, "obs": self.obs.clone(), "z": self.z.clone(),
                "since_decision": self.since_decision.clone(), "first": self.first.clone(),
                "env": self.env.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.master_opt.load_state_dict(state["master_opt"])
        if self.sub_opt is not None:
            self.sub_opt.load_state_dict(state["sub_opt"])
        self.iteration, self.frames = int(state["iteration"]), int(state["frames"])
        self.obs, self.z = state["obs"], state["z"]
        self.since_decision, self.first = state["since_decision"], state["first"]
        self.env.set_state(state["env"])
