"""MLSH on a batched multitask env: one phase (option learning or transfer) as ``iterate`` = schedule → collect → update.

Option learning: each task slot runs MLSH's cycle — draw a task and re-initialise the slot's master, ``warmup``
iterations updating only the master, ``joint`` iterations updating master and sub-policies (sub-policy updates use
the data of the slots in their joint iterations only). Transfer: sub-policies frozen, every slot a fresh master on
its transfer task, masters trained for the whole phase. Frames are counted per task slot.

The learner trains a population (``msol.common.population``): every member has its own networks (a member dimension in
every layer), envs, task draws, Adam state and ``torch.Generator``; rows are member-major. A single run is a
population of one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.distributions import Categorical

from msol.baselines.mlsh.losses import (
    Minibatch,
    group_mean,
    group_rows,
    macro_gae,
    member_minibatches,
    normalize_per_group,
    ppo_terms,
    schedule,
    slot_offsets,
)
from msol.baselines.mlsh.networks import MLSHPolicy
from msol.baselines.mlsh.probe import diversity_metrics, sub_policy_destinations
from msol.baselines.mlsh.storage import MLSHRollout
from msol.common.device import env_tensor
from msol.common.envs_adapter import MultitaskEnv, make_env
from msol.common.layers import Generators
from msol.common.member_adam import MemberAdam
from msol.common.numerics import check_finite
from msol.common.option_map import plot_option_map
from msol.common.population import (
    MemberRecords,
    PopulationEnv,
    categorical_draw,
    load_optimizer_members,
    member_uniforms,
    optimizer_member_state,
    pad_to_member_blocks,
)
from msol.common.protocol import PhaseSpec, draw_slot_task, episode_row, evaluate_episodes, mean_stats
from msol.common.returns import gae_advantages
from msol.common.run import Run
from msol.envs.registry import option_probe

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
              decide: torch.Tensor, random_sub_prob: float, greedy: bool = False,
              generators: Generators = (None,), envs_per_slot: int | None = None) -> Decision:
    """Where ``decide``: the slot's master picks ``z`` (replaced by a uniform one with ``random_sub_prob``, as the
    MLSH code does); elsewhere ``z`` continues. Then the shared sub-policy ``z`` acts. ``greedy``: argmax of master
    and sub-policy, no random sub-policy (evaluation episodes with ``eval.greedy``). Member ``k``'s rows draw from
    ``generators[k]``. ``envs_per_slot``: the rows are a ``MultitaskEnv``'s (per member, ``envs_per_slot``
    consecutive rows per slot, slots in order), so each master runs on its own rows only (same result, less work)."""
    u = None if greedy else member_uniforms(generators, obs.shape[0], 4, obs.dtype, obs.device)
    master, master_value = _masters(policy, obs, slot, envs_per_slot)
    if u is None:
        z_new = master.logits.argmax(-1)
    else:
        z_new = categorical_draw(master.logits, u[:, 0])
        uniform_sub = (u[:, 2] * policy.num_subs).long().clamp(max=policy.num_subs - 1)
        z_new = torch.where(u[:, 1] < random_sub_prob, uniform_sub, z_new)
    z = torch.where(decide, z_new, z_prev)
    sub, sub_value = policy.sub(obs, z)
    action = sub.logits.argmax(-1) if u is None else categorical_draw(sub.logits, u[:, 3])
    return Decision(z, decide, master.log_prob(z), master_value, action, sub.log_prob(action), sub_value)


def _masters(policy: MLSHPolicy, obs: torch.Tensor, slot: torch.Tensor, envs_per_slot: int | None
             ) -> tuple[Categorical, torch.Tensor]:
    """``policy.master(obs, slot)``; grouped by slot when the rows are laid out slot by slot (``envs_per_slot``)."""
    if envs_per_slot is None:
        return policy.master(obs, slot)
    dist, value = policy.master_grouped(obs.view(policy.members, policy.num_slots, envs_per_slot, -1))
    return Categorical(logits=dist.logits.flatten(0, 2), validate_args=False), value.flatten()


class MLSHLearner(MemberRecords):
    """One protocol phase of MLSH for every member of a population (see the module docstring); a ``PhaseLearner``."""

    def __init__(self, cfg: DictConfig, spec: PhaseSpec, env: PopulationEnv, policy: MLSHPolicy,
                 generators: Generators) -> None:
        self.a = SimpleNamespace(**OmegaConf.to_container(cfg.algo, resolve=True))
        self.cfg, self.spec, self.env, self.model = cfg, spec, env, policy
        self.device = policy.device
        self.generators = list(generators)
        self.members = len(self.generators)
        self.transfer = spec.name == "transfer"
        self.num_envs, self.num_slots = env.num_envs, spec.num_slots
        self.slot = torch.as_tensor(env.slot_of_env, dtype=torch.long, device=self.device)
        self.member_of_env = torch.arange(env.num_envs, device=self.device) // env.per_member
        self.envs_per_slot = env.per_member // self.num_slots  # MultitaskEnv: slot i's envs are consecutive rows
        self.T, self.N = int(self.a.rollout_steps), int(self.a.macro_duration)
        self.storage = MLSHRollout.allocate(self.T, self.num_envs, env.obs_dim, self.device)
        # Created once per phase and never reset with a master (a code fact of MLSH, docs/spec/baselines.md).
        S = self.members
        self.master_opt = MemberAdam(policy.master_parameters(), self.a.master_lr, members=S, eps=self.a.adam_eps)
        self.sub_opt = None if self.transfer else MemberAdam(policy.sub_parameters(), self.a.sub_lr, members=S,
                                                             eps=self.a.adam_eps)
        cycle = int(self.a.warmup) + int(self.a.joint)
        self.offsets = slot_offsets(self.num_slots, cycle, bool(self.a.stagger_slots))
        self.iteration = 0
        self.frames = 0
        self.obs = torch.zeros(self.num_envs, env.obs_dim, device=self.device)
        self.z = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.since_decision = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.first = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        MemberRecords.__init__(self, S)
        self.probe_envs: list[MultitaskEnv | None] = [
            make_env(cfg, [env.tasks[0]], mode="train", envs_per_slot=PROBE_LAYOUTS, seed=seed)
            if option_probe(cfg.env.id) is not None else None for seed in range(int(cfg.seed), int(cfg.seed) + S)]

    # ------------------------------------------------------------------ PhaseLearner
    @property
    def frames_per_iteration(self) -> int:
        return self.T * self.env.per_member // self.num_slots

    def start(self, seeds: list[int]) -> None:
        self.obs = env_tensor(self.env.reset(seeds), self.device)
        self.first[:] = True

    def iterate(self) -> None:
        joint = self.begin_iteration()
        self.collect()
        self.update(joint)
        self.iteration += 1

    def begin_iteration(self) -> torch.Tensor:
        """Apply the W/U schedule (the same for every member): new tasks (each member draws its own) and fresh
        masters where a cycle starts; returns the joint slots."""
        joint = torch.zeros(self.num_slots, dtype=torch.bool, device=self.device)
        if self.transfer:
            return joint
        for slot in range(self.num_slots):
            new_task, joint[slot] = schedule(self.iteration, self.offsets[slot], int(self.a.warmup),
                                             int(self.a.joint))
            if new_task:
                self.model.reset_master(slot, self.generators)
                for member, (env, generator) in enumerate(zip(self.env.members, self.generators, strict=True)):
                    task = draw_slot_task(list(self.spec.tasks), env.slot_tasks, slot, "uniform", generator)
                    env_idx, obs = self.env.assign_task(member, slot, task)
                    self.obs[env_idx] = env_tensor(obs, self.device)
                    self.first[env_idx] = True
        return joint

    def collect(self) -> None:
        st = self.storage
        for t in range(self.T):
            # The master decides every N steps, at episode starts, and at the first step of every rollout (so each
            # rollout's last macro step bootstraps from a decision state).
            decide = self.first | (self.since_decision >= self.N) | (t == 0)
            step = mlsh_step(self.model, self.obs, self.slot, self.z, decide, float(self.a.random_sub_prob),
                             generators=self.generators, envs_per_slot=self.envs_per_slot)
            st.obs[t], st.decide[t], st.z[t], st.action[t] = self.obs, decide.float(), step.z, step.action
            st.sub_logp[t], st.sub_value[t] = step.sub_logp, step.sub_value
            st.master_logp[t], st.master_value[t] = step.master_logp, step.master_value
            out = self.env.step(step.action.cpu().numpy())
            st.reward[t], st.terminated[t], st.truncated[t] = out.tensors(self.device)
            st.sub_bootstrap[t], st.master_bootstrap[t] = 0.0, 0.0
            if (cut := out.truncated_final_obs(self.device)) is not None:
                idx, final = cut
                st.sub_bootstrap[t, idx], st.master_bootstrap[t, idx] = self._values_at(idx, final, step.z[idx])
            for env_index, ret in out.episode_returns:
                self.episodes[self.env.member_of(env_index)].append((int(self.slot[env_index]), ret))
            self.obs = env_tensor(out.obs, self.device)
            self.z = step.z
            self.since_decision = torch.where(decide, 1, self.since_decision + 1)
            self.first = torch.as_tensor(out.terminated | out.truncated, device=self.device)
        self.frames += self.frames_per_iteration

    @torch.no_grad()
    def _values_at(self, rows: torch.Tensor, obs: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(V_θz(obs), V_φ(obs))`` for some env rows only (time-limit bootstraps), padded to equal member blocks."""
        where, (obs, z, slot) = pad_to_member_blocks(rows, self.env.per_member, self.members,
                                                     obs, z, self.slot[rows])
        return self.model.sub(obs, z)[1][where], self.model.master(obs, slot)[1][where]

    # ------------------------------------------------------------------ update
    def update(self, joint: torch.Tensor) -> None:
        st, a = self.storage, self.a
        check_finite("observations", st.obs)
        with torch.no_grad():
            last_master_value = _masters(self.model, self.obs, self.slot, self.envs_per_slot)[1]
            last_sub_value = self.model.sub(self.obs, self.z)[1]
        stats = self._update_masters(last_master_value)
        env_joint = joint[self.slot]
        if self.sub_opt is not None and env_joint.any():
            sub_adv = gae_advantages(st.reward, st.sub_value, st.terminated, st.truncated, st.sub_bootstrap,
                                     last_sub_value, a.gamma, a.gae_lambda)
            rows = env_joint.expand(self.T, -1).flatten()
            for member_stats, sub_stats in zip(stats, self._update_subs(rows, sub_adv.flatten()), strict=True):
                member_stats.update(sub_stats)
        z = st.z.view(self.T, self.members, -1).transpose(0, 1).flatten(1)  # [S, T·n]
        m = self.model.num_subs
        ones = torch.ones_like(z, dtype=torch.float32)
        usage = ones.new_zeros(self.members, m).scatter_add_(1, z, ones) / z.shape[1]
        for member, member_stats in enumerate(stats):
            member_stats["joint_slots"] = joint.float().mean().item()
            member_stats.update({f"option_usage/{k}": usage[member, k].item() for k in range(m)})
            self.update_stats[member].append(member_stats)

    def _update_masters(self, last_value: torch.Tensor) -> list[dict[str, float]]:
        """PPO on every slot's master over its macro steps (minibatches of its own rows); statistics per member."""
        st, a = self.storage, self.a
        adv, macro_reward = macro_gae(st.reward, st.decide, st.terminated, st.truncated, st.master_value,
                                      st.master_bootstrap, last_value, a.gamma, a.gae_lambda)
        rows = st.decide.flatten() > 0
        obs, z = st.obs.flatten(0, 1)[rows], st.z.flatten()[rows]
        old_logp, old_value = st.master_logp.flatten()[rows], st.master_value.flatten()[rows]
        adv = adv.flatten()[rows]
        returns = adv + old_value
        slot = self.slot.expand(self.T, -1).flatten()[rows]
        member = self.member_of_env.expand(self.T, -1).flatten()[rows]
        group = member * self.num_slots + slot  # one learner per (member, slot)
        adv = normalize_per_group(adv, group, self.members * self.num_slots)
        rows_of = group_rows(member, slot, self.members, self.num_slots)

        def loss(batch: Minibatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            idx = batch.rows
            dist, value = self.model.master_grouped(obs[idx].view(self.members, self.num_slots, batch.width, -1))
            logp = dist.log_prob(z[idx].view(value.shape)).flatten()
            L_pi, L_V = ppo_terms(logp, old_logp[idx], adv[idx], value.flatten(), old_value[idx], returns[idx],
                                  a.ppo_clip)
            return L_pi, L_V, dist.entropy().flatten()

        stats = self._ppo(self.master_opt, loss, rows_of, self.num_slots, "master",
                          batch_size=int(a.master_batch_size))
        reward = macro_reward.new_zeros(self.members).index_add_(0, member, macro_reward.flatten()[rows])
        reward /= torch.bincount(member, minlength=self.members).clamp_min(1)
        for member_stats, r in zip(stats, reward.tolist(), strict=True):
            member_stats["master/macro_reward"] = r
        return stats

    def _update_subs(self, rows: torch.Tensor, adv: torch.Tensor) -> list[dict[str, float]]:
        """PPO on each shared sub-policy over the steps it acted in the joint slots (15 minibatches per epoch)."""
        st, a = self.storage, self.a
        obs, z, action = st.obs.flatten(0, 1)[rows], st.z.flatten()[rows], st.action.flatten()[rows]
        old_logp, old_value = st.sub_logp.flatten()[rows], st.sub_value.flatten()[rows]
        adv = adv[rows]
        returns = adv + old_value
        m = self.model.num_subs
        member = self.member_of_env.expand(self.T, -1).flatten()[rows]
        group = member * m + z  # one learner per (member, sub-policy)
        adv = normalize_per_group(adv, group, self.members * m)

        def loss(batch: Minibatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            idx = batch.rows
            dist, value = self.model.sub_grouped(obs[idx].view(self.members, m, batch.width, -1))
            logp = dist.log_prob(action[idx].view(value.shape)).flatten()
            L_pi, L_V = ppo_terms(logp, old_logp[idx], adv[idx], value.flatten(), old_value[idx], returns[idx],
                                  a.ppo_clip)
            return L_pi, L_V, dist.entropy().flatten()

        return self._ppo(self.sub_opt, loss, group_rows(member, z, self.members, m), m, "sub",
                         num_batches=int(a.sub_minibatches))

    def _ppo(self, optimizer: MemberAdam, loss: Callable[[Minibatch], tuple[torch.Tensor, ...]],
             rows_of: list[list[torch.Tensor]], num_groups: int, name: str, **chunking: int
             ) -> list[dict[str, float]]:
        """``ppo_epochs`` epochs of minibatch steps, each member on its own minibatches (padded to equal member
        blocks; a member without rows in a minibatch does not step); mean statistics per member."""
        sums = torch.zeros(self.members, 3, dtype=torch.float64, device=self.device)
        counts = torch.zeros(self.members, device=self.device)
        for _ in range(int(self.a.ppo_epochs)):
            for batch in member_minibatches(rows_of, self.generators, **chunking):
                L_pi, L_V, entropy = loss(batch)
                total = group_mean(L_pi + L_V, batch.group_of_rows(self.members, num_groups),
                                   self.members * num_groups, weight=batch.valid)
                check_finite("loss", total)
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step(batch.active)
                with torch.no_grad():  # per member: the mean over its rows of this minibatch
                    valid = batch.valid.view(self.members, -1).to(L_pi.dtype)
                    terms = torch.stack([L_pi, L_V, entropy], -1).detach().view(self.members, -1, 3)
                    sums += ((terms * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp_min(1)).double()
                    counts += batch.active
        means = (sums / counts.clamp_min(1).unsqueeze(-1).double()).tolist()
        return [{f"{name}/loss_policy": p, f"{name}/loss_value": v, f"{name}/entropy": e} if n else {}
                for (p, v, e), n in zip(means, counts.tolist(), strict=True)]

    # ------------------------------------------------------------------ logging, evaluation, checkpoints
    def pop_log_rows(self) -> list[dict[str, float]]:
        rows = []
        for member, env in enumerate(self.env.members):
            row = mean_stats(self.update_stats[member])
            row.update(episode_row(self.episodes[member], env.slot_tasks))
            row["iteration"] = self.iteration
            rows.append(row)
        self.clear_records()
        return rows

    def finish_phase(self, member: int, run: Run) -> dict[str, float]:
        """The sub-policy map of this phase on grid envs (``msol.common.option_map.plot_option_map``: the sub-policy each task's
        master picks on each cell; MLSH has no terminations, its master re-decides every N steps). The Moving
        Bandits diversity probe runs with every evaluation."""
        policy = self.model.member(member)

        def choose(obs: torch.Tensor, slot: int) -> tuple[np.ndarray, None]:
            obs = obs.to(self.device)
            master, _ = policy.master(obs, torch.full((obs.shape[0],), slot, dtype=torch.long, device=self.device))
            return master.logits.argmax(-1).cpu().numpy(), None

        figure = plot_option_map(self.env.members[member], run.dir / "figures" / f"options_{self.spec.name}.png",
                                 choose, self.model.num_subs, name="sub-policy")
        if figure is not None:
            run.log_image(f"figures/options_{self.spec.name}", figure)
        return {}

    def evaluate(self, member: int, env: MultitaskEnv, seed: int) -> dict[str, float]:
        """One episode per eval env of member ``member`` with each slot's current task and master (greedy with
        ``eval.greedy``, as MSOL's evaluation; the row's ``greedy`` column says which); plus the diversity probe."""
        greedy = bool(self.cfg.eval.greedy)
        policy, generators = self.model.member(member), [self.generators[member]]
        z = torch.zeros(env.num_envs, dtype=torch.long, device=self.device)
        since = torch.zeros(env.num_envs, dtype=torch.long, device=self.device)
        slot = torch.as_tensor(env.slot_of_env, dtype=torch.long, device=self.device)

        def act(obs: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
            nonlocal z, since
            decide = (first > 0) | (since >= self.N)
            step = mlsh_step(policy, obs, slot, z, decide, float(self.a.random_sub_prob), greedy=greedy,
                             generators=generators, envs_per_slot=env.num_envs // self.num_slots)
            z, since = step.z, torch.where(decide, 1, since + 1)
            return step.action

        row = evaluate_episodes(env, seed=seed, slot_tasks=self.env.members[member].slot_tasks, act=act,
                                device=self.device)
        row["greedy"] = float(greedy)
        if (probe_env := self.probe_envs[member]) is not None:
            row.update(diversity_metrics(*sub_policy_destinations(policy, probe_env, seed=seed)))
        return row

    def state_dict(self, member: int) -> dict[str, Any]:
        """Member ``member``'s state: exactly what a single run of its seed checkpoints."""
        rows = self._rows(member)
        return {"model": self.model.member(member).state_dict(),
                "master_opt": optimizer_member_state(self.master_opt, member),
                "sub_opt": optimizer_member_state(self.sub_opt, member) if self.sub_opt is not None else {},
                "iteration": self.iteration, "frames": self.frames, "obs": self.obs[rows].clone(),
                "z": self.z[rows].clone(), "since_decision": self.since_decision[rows].clone(),
                "first": self.first[rows].clone(), "env": self.env.members[member].get_state()}

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        """Every member's :meth:`state_dict`, in member order."""
        for member, state in enumerate(states):
            self.model.load_member(member, state["model"])
            self.env.members[member].set_state(state["env"])
        load_optimizer_members(self.master_opt, [s["master_opt"] for s in states])
        if self.sub_opt is not None:
            load_optimizer_members(self.sub_opt, [s["sub_opt"] for s in states])
        self.iteration, self.frames = int(states[0]["iteration"]), int(states[0]["frames"])
        self.obs = torch.cat([s["obs"] for s in states]).to(self.device)
        self.z = torch.cat([s["z"] for s in states]).to(self.device)
        self.since_decision = torch.cat([s["since_decision"] for s in states]).to(self.device)
        self.first = torch.cat([s["first"] for s in states]).to(self.device)

    def model_state(self, member: int) -> dict[str, torch.Tensor]:
        return self.model.member(member).state_dict()

    def _rows(self, member: int) -> slice:
        n = self.env.per_member
        return slice(member * n, (member + 1) * n)
