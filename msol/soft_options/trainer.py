"""MSOL training: option learning on the training tasks, then transfer (docs/spec/msol.md, "Protocol").

``MSOLLearner`` follows stable-baselines3's split: the policy (``msol.soft_options.networks``) acts, ``collect`` fills a
``Rollout`` from the batched multitask env, ``update`` applies the loss of ``msol.soft_options.losses``. It is the
:class:`msol.common.protocol.PhaseLearner` of MSOL and of the baselines that are special cases of the hierarchy;
``msol.common.protocol.run_protocol`` chains the phases, logs, evaluates and checkpoints. Frames are counted per task
slot ("frames per task") everywhere.

One ``MSOLLearner`` trains every member of a population (``msol.common.population``) with one forward, backward and
optimiser step; a single run is a population of one.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from msol.common.algorithms import register_algorithm
from msol.common.device import build_on_cpu, env_tensor, learner_device
from msol.common.envs_adapter import MultitaskEnv
from msol.common.layers import Generators
from msol.common.numerics import check_finite, check_finite_grads
from msol.common.population import (
    MemberRecords,
    PopulationEnv,
    clip_grad_norm_per_member,
    load_optimizer_members,
    optimizer_member_state,
    pad_to_member_blocks,
)
from msol.common.protocol import (
    PhaseSpec,
    build_phases,
    draw_slot_task,
    episode_row,
    mean_stats,
    run_protocol,
    task_names,
)
from msol.common.returns import gae_advantages, nstep_returns
from msol.common.run import Run
from msol.common.schedules import anneal_then_hold
from msol.envs.registry import option_probe
from msol.soft_options.acting import act, value_after
from msol.soft_options.diagnostics import option_layer_stats
from msol.soft_options.evaluation import evaluate_slots
from msol.soft_options.figures import plot_options
from msol.soft_options.inputs import policy_input
from msol.soft_options.losses import msol_a2c_loss, msol_ppo_loss, regularized_reward, rollout_terms
from msol.soft_options.networks import HierarchicalPolicy
from msol.soft_options.option_probe import same_goal_fraction
from msol.soft_options.settings import SoftOptionsSettings
from msol.soft_options.storage import Rollout, member_major, time_major


class MSOLLearner(MemberRecords):
    """One phase (option learning or transfer) of MSOL on the members' batched multitask envs: ``collect`` /
    ``update``. Rows are member-major: member ``k`` owns rows ``k·n … (k+1)·n − 1`` of every step."""

    def __init__(self, cfg: DictConfig, spec: PhaseSpec, policy: HierarchicalPolicy, env: PopulationEnv,
                 generators: Generators) -> None:
        # A plain namespace: OmegaConf resolves interpolations on every attribute access, far too slow per step.
        self.a = SimpleNamespace(**OmegaConf.to_container(cfg.algo, resolve=True))
        self.budget_scale = float(cfg.budget_scale)
        self.cfg, self.spec = cfg, spec
        self.policy, self.env = policy, env
        self.device = policy.device
        self.generators = list(generators)
        self.members = len(self.generators)
        self.transfer = spec.name == "transfer"
        self.scratch = spec.name == "scratch"  # flat learner from scratch: β = 0, no prior to distil
        self.num_envs = env.num_envs
        self.slot = torch.as_tensor(env.slot_of_env, dtype=torch.long, device=self.device)
        self.flat_slot = member_major(self.slot.expand(int(self.a.n_steps), -1), self.members)  # of storage.flat
        self.continuous = policy.continuous
        self.n_steps = int(self.a.n_steps)
        self.observe_prev_action = bool(self.a.observe_prev_action)
        input_dim = env.obs_dim + (env.action_dim if self.observe_prev_action else 0)
        self.storage = Rollout.allocate(self.n_steps, self.num_envs, input_dim, env.action_shape, self.continuous,
                                        self.device)
        self.optimizer = self._make_optimizer()
        # Per-slot parameters and their slot dimension: zeroed in the optimizer state when their slot is reset.
        heads = (policy.master, policy.value, policy.intra, policy.termination)
        self.slot_params = [(p, dim) for head in heads for p, dim in ((head.weight, head.WEIGHT_SLOT_DIM),
                                                                      (head.bias, head.BIAS_SLOT_DIM))]
        if self.continuous:
            self.slot_params.append((policy.intra_log_std, 1))
        self.frames = 0  # frames per task done in this phase
        self.obs = torch.zeros(self.num_envs, env.obs_dim, device=self.device)
        self.z_prev = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.first = torch.ones(self.num_envs, device=self.device)
        # Read only with observe_prev_action.
        self.prev_action = torch.full((self.num_envs,), -1, dtype=torch.long, device=self.device)
        MemberRecords.__init__(self, self.members)
        self.slot_resets_done = np.zeros(spec.num_slots, dtype=np.int64)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if self.a.optimizer == "rmsprop":
            return torch.optim.RMSprop(params, lr=self.a.lr, alpha=self.a.rmsprop_alpha, eps=self.a.eps, foreach=True)
        if self.a.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.a.lr, eps=self.a.eps, foreach=True)
        raise ValueError(f"algo.optimizer={self.a.optimizer!r}; valid: rmsprop, adam")

    # ------------------------------------------------------------------ schedules
    @property
    def beta(self) -> float:
        if self.scratch:
            return 0.0
        if self.transfer:
            return float(self.a.beta_end)
        return anneal_then_hold(self.frames, self.spec.frames_per_task, self.a.beta_start, self.a.beta_end,
                             self.a.beta_hold_frames_per_task * self.budget_scale)

    @property
    def entropy_coef(self) -> float:
        """λ_H anneals over option learning less its final period and is then held, like β (authors' code)."""
        if self.transfer or self.scratch:
            return float(self.a.entropy_transfer)
        return anneal_then_hold(self.frames, self.spec.frames_per_task, self.a.entropy_start, self.a.entropy_end,
                             self.a.beta_hold_frames_per_task * self.budget_scale)

    # ------------------------------------------------------------------ collect
    def start(self, seeds: list[int]) -> None:
        obs = self.env.reset(seeds)
        self.obs = env_tensor(obs, self.device)
        self.first = torch.ones(self.num_envs, device=self.device)
        self.prev_action.fill_(-1)

    def _input(self, obs: torch.Tensor, prev_action: torch.Tensor) -> torch.Tensor:
        return policy_input(obs, prev_action if self.observe_prev_action else None, self.env.action_dim)

    @property
    def greedy_options(self) -> bool:
        """Frozen options (MSOL(frozen), hard options) act with argmax where ``algo.greedy_options`` says so."""
        return bool(self.a.greedy_options) and self.policy.frozen_posteriors

    def collect(self) -> None:
        """Fill the rollout with ``n_steps`` steps of every env."""
        st, greedy = self.storage, self.greedy_options
        for t in range(self.n_steps):
            x = self._input(self.obs, self.prev_action)
            check_finite("observations", x)  # before the networks turn it into an opaque sampling error
            st.obs[t] = x  # stored before stepping: envs may recycle their observation buffers
            step = act(self.policy, x, self.z_prev, self.first, self.slot, generators=self.generators,
                       greedy_options=greedy)
            out = self.env.step(step.action.cpu().numpy())
            st.z_prev[t], st.z[t], st.b[t] = self.z_prev, step.z, step.b.float()
            st.action[t], st.first[t], st.z_hat_switch[t] = step.action, self.first, step.z_hat_switch
            st.old_logp[t], st.old_value[t] = step.logp, step.value
            st.reward[t], st.terminated[t], st.truncated[t] = out.tensors(self.device)
            st.bootstrap[t] = 0.0
            if (cut := out.truncated_final_obs(self.device)) is not None:
                idx, final = cut
                final = self._input(final, step.action[idx]) if self.observe_prev_action else final
                st.bootstrap[t, idx] = self._values_at(idx, final, step.z[idx])
            for env_index, ret in out.episode_returns:
                self.episodes[self.env.member_of(env_index)].append((int(self.slot[env_index]), ret))
            done = env_tensor(out.terminated | out.truncated, self.device)
            self.obs = env_tensor(out.obs, self.device)
            self.z_prev, self.first = step.z, done
            if self.observe_prev_action:
                self.prev_action = torch.where(done > 0, -1, step.action)
        self.frames += self.frames_per_iteration

    def _values_at(self, rows: torch.Tensor, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``V(obs, z)`` for some env rows only (time-limit bootstraps), padded to equal member blocks."""
        where, (obs, z, slot) = pad_to_member_blocks(rows, self.env.per_member, self.members,
                                                     obs, z, self.slot[rows])
        return value_after(self.policy, obs, z, slot)[where]

    # ------------------------------------------------------------------ update
    def update(self) -> None:
        fixed_prior = None if self.transfer else 1.0 - float(self.a.alpha)
        distill = self.spec.name == "options"
        last_value = value_after(self.policy, self._input(self.obs, self.prev_action), self.z_prev, self.slot)
        S, T = self.members, self.n_steps
        flat, slot = self.storage.flat(S), self.flat_slot
        beta, entropy_coef = self.beta, self.entropy_coef
        common = {"entropy_coef": entropy_coef, "value_coef": self.a.value_coef,
                  "action_entropy_coef": self.a.entropy_action, "prior_coef": self.a.prior_coef,
                  "distill_priors": distill, "members": self.members}
        if self.a.loss == "a2c":
            ev = rollout_terms(self.policy, flat, slot, fixed_termination_prior=fixed_prior)
            R = time_major(regularized_reward(flat.reward, ev, flat.first, beta), S, T)
            returns = nstep_returns(R, self.storage.terminated, self.storage.truncated, self.storage.bootstrap,
                                    last_value, self.a.gamma)
            returns = member_major(returns, S)
            loss, stats = msol_a2c_loss(ev, flat, returns, policy_coef=self.a.policy_coef, **common)
            self._step(loss)
        else:
            stats = self._ppo_update(flat, slot, last_value, beta, fixed_prior, common)
            with torch.no_grad():  # for the logged KL/entropy statistics only: no graph
                ev = rollout_terms(self.policy, flat, slot, fixed_termination_prior=fixed_prior)
        with torch.no_grad():
            not_first = (1.0 - flat.first).view(S, -1)
            steps = not_first.sum(1).clamp_min(1)
            stats.update({
                "kl/intra_option": (ev.logq_L - ev.logp_L).view(S, -1).mean(1),
                "kl/termination": ((ev.logq_T - ev.logp_T).view(S, -1) * not_first).sum(1) / steps,
                "entropy/master": ev.ent_H.view(S, -1).mean(1),
                "termination_rate": (flat.b.view(S, -1) * not_first).sum(1) / steps,
                "value/mean": ev.value.view(S, -1).mean(1),
            })
            z = flat.z.view(S, -1)
            for k in range(self.policy.num_options):
                stats[f"option_usage/{k}"] = (z == k).float().mean(1)
        names = list(stats)
        values = torch.stack([stats[n].to(torch.float64) for n in names], 1).tolist()  # one copy out: [S, stats]
        for member, row in enumerate(values):
            self.update_stats[member].append({**dict(zip(names, row)), "beta": beta, "entropy_coef": entropy_coef})

    def _ppo_update(self, flat: Rollout, slot: torch.Tensor, last_value: torch.Tensor, beta: float,
                    fixed_prior: float | None, common: dict[str, Any]) -> dict[str, torch.Tensor]:
        T = self.n_steps
        rows = flat.obs.shape[0] // self.members
        stats: dict[str, torch.Tensor] = {}
        for _ in range(int(self.a.ppo_epochs)):
            # Regularised rewards depend on the networks: recompute them (and GAE) at every epoch.
            with torch.no_grad():
                ev = rollout_terms(self.policy, flat, slot, fixed_termination_prior=fixed_prior)
                R = time_major(regularized_reward(flat.reward, ev, flat.first, beta), self.members, T)
                adv = gae_advantages(R, self.storage.old_value, self.storage.terminated,
                                     self.storage.truncated, self.storage.bootstrap, last_value,
                                     self.a.gamma, self.a.gae_lambda)
                adv = member_major(adv, self.members)
                returns = adv + flat.old_value
            # Each member's minibatches from its own permutation of its own rows, member-major like every batch.
            chunks = [(torch.randperm(rows, generator=g, device="cpu") + k * rows).to(self.device)
                      .chunk(int(self.a.ppo_minibatches)) for k, g in enumerate(self.generators)]
            for idx in (torch.cat(parts) for parts in zip(*chunks, strict=True)):
                mb = flat.index(idx)
                ev = rollout_terms(self.policy, mb, slot[idx], fixed_termination_prior=fixed_prior)
                loss, stats = msol_ppo_loss(ev, mb, adv[idx], returns[idx], clip=self.a.ppo_clip, **common)
                self._step(loss)
        return stats

    def _step(self, loss: torch.Tensor) -> None:
        check_finite("loss", loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.policy.parameters() if p.requires_grad]
        grad_norm = clip_grad_norm_per_member(params, self.a.max_grad_norm, self.members)
        if not torch.isfinite(grad_norm).all():
            check_finite_grads(self.policy)  # names the first parameter whose gradient is not finite
        self.optimizer.step()

    # ------------------------------------------------------------------ task-slot resets
    def maybe_reset_slots(self) -> None:
        """Staggered regular resets: slot ``i`` resets each time ``frames + i/n · interval`` crosses an interval.

        A reset slot keeps its task by default (``algo.slot_task_draw=keep``, the authors' ``reset_task``): only its
        master, value and posteriors are re-initialised and its envs restart with fresh episodes.
        """
        interval = self.spec.slot_reset_frames
        if interval is None:
            return
        n = self.spec.num_slots
        due = (self.frames + np.arange(n) * interval // n) // interval
        for slot in np.flatnonzero(due > self.slot_resets_done):
            self.slot_resets_done[slot] = due[slot]
            self.policy.reset_slot(int(slot), self.generators)
            if self.a.reset_optimizer == "all":
                self.optimizer = self._make_optimizer()
            else:
                self._reset_optimizer_rows(int(slot))
            for member, env in enumerate(self.env.members):
                task = draw_slot_task(list(self.spec.tasks), env.slot_tasks, int(slot), str(self.a.slot_task_draw),
                                      self.generators[member])
                env_idx, obs = self.env.assign_task(member, int(slot), task)
                self.obs[env_idx] = env_tensor(obs, self.device)
                self.first[env_idx] = 1.0
                self.prev_action[env_idx] = -1

    def _reset_optimizer_rows(self, slot: int) -> None:
        for param, dim in self.slot_params:
            for value in self.optimizer.state.get(param, {}).values():
                if torch.is_tensor(value) and value.shape == param.shape:
                    value.select(dim, slot).zero_()

    # ------------------------------------------------------------------ the protocol's side (PhaseLearner)
    @property
    def model(self) -> HierarchicalPolicy:
        return self.policy

    @property
    def frames_per_iteration(self) -> int:
        return self.n_steps * self.env.per_member // self.spec.num_slots

    def iterate(self) -> None:
        self.maybe_reset_slots()
        self.collect()
        self.update()

    def evaluate(self, member: int, env: MultitaskEnv, seed: int) -> dict[str, float]:
        """Member ``member``'s evaluation episodes: greedy at every level with ``eval.greedy`` (the authors' test
        curves), else sampled as in training; the row's ``greedy`` column says which."""
        greedy = bool(self.cfg.eval.greedy)
        row = evaluate_slots(self.policy.member(member), env, seed=seed,
                             slot_tasks=self.env.members[member].slot_tasks, generator=self.generators[member],
                             greedy=greedy or self.greedy_options, greedy_master=greedy,
                             observe_prev_action=self.observe_prev_action)
        row["greedy"] = float(greedy)
        return row

    def finish_phase(self, member: int, run: Run) -> dict[str, float]:
        """The option picture of this phase (PNG in the run dir and W&B); on Moving Bandits the option probe."""
        policy, env = self.policy.member(member), self.env.members[member]
        figure = plot_options(policy, env, run.dir / "figures" / f"options_{self.spec.name}.png",
                              posteriors=self.spec.name != "options")
        if figure is not None:
            run.log_image(f"figures/options_{self.spec.name}", figure)
        if self.spec.name == "options" and option_probe(env.env_id) is not None:
            return {"options/same_goal_fraction": same_goal_fraction(policy)}
        return {}

    def pop_log_rows(self) -> list[dict[str, float]]:
        """Per member: mean of the update statistics and per-task returns since the last row, and the option-layer
        diagnostics (:func:`msol.soft_options.diagnostics.option_layer_stats`) on the member's last rollout observations."""
        rows = []
        obs = self.storage.obs.view(self.n_steps, self.members, -1, self.storage.obs.shape[-1])
        for member, env in enumerate(self.env.members):
            slot = torch.as_tensor(env.slot_of_env, dtype=torch.long, device=self.device).repeat(self.n_steps)
            rows.append({**mean_stats(self.update_stats[member]), **episode_row(self.episodes[member], env.slot_tasks),
                         **option_layer_stats(self.policy.member(member), obs[:, member].flatten(0, 1), slot,
                                              env.slot_tasks)})
        self.clear_records()
        return rows

    def state_dict(self, member: int) -> dict[str, Any]:
        """Member ``member``'s state: exactly what a single run of its seed checkpoints."""
        rows = self._rows(member)
        return {"policy": self.policy.member(member).state_dict(),
                "optimizer": optimizer_member_state(self.optimizer, member), "frames": self.frames,
                "obs": self.obs[rows].clone(), "z_prev": self.z_prev[rows].clone(), "first": self.first[rows].clone(),
                "prev_action": self.prev_action[rows].clone(),
                "slot_resets_done": torch.as_tensor(self.slot_resets_done, device="cpu"),
                "env": self.env.members[member].get_state()}

    def load_state_dicts(self, states: list[dict[str, Any]]) -> None:
        """Every member's :meth:`state_dict`, in member order."""
        for member, state in enumerate(states):
            self.policy.load_member(member, state["policy"])
            self.env.members[member].set_state(state["env"])
        load_optimizer_members(self.optimizer, [s["optimizer"] for s in states])
        self.frames = int(states[0]["frames"])
        self.obs = torch.cat([s["obs"] for s in states]).to(self.device)
        self.z_prev = torch.cat([s["z_prev"] for s in states]).to(self.device)
        self.first = torch.cat([s["first"] for s in states]).to(self.device)
        self.prev_action = torch.cat([s["prev_action"] for s in states]).to(self.device)
        self.slot_resets_done = states[0]["slot_resets_done"].cpu().numpy().astype(np.int64)

    def model_state(self, member: int) -> dict[str, torch.Tensor]:
        return self.policy.member(member).state_dict()

    def _rows(self, member: int) -> slice:
        n = self.env.per_member
        return slice(member * n, (member + 1) * n)


def _make_policy(cfg: DictConfig, env: MultitaskEnv | PopulationEnv, num_slots: int, num_primitives: int = 0,
                 generators: Generators = (None,)) -> HierarchicalPolicy:
    a = cfg.algo
    obs_dim = env.obs_dim + (env.action_dim if a.observe_prev_action else 0)
    policy = HierarchicalPolicy(obs_dim, env.action_dim, continuous=env.continuous, num_slots=num_slots,
                                num_options=int(a.num_options), hidden=list(a.hidden),
                                encoder_output_size=int(a.encoder_output_size),
                                option_embedding=int(a.option_embedding), master_input=str(a.master_input),
                                learn_terminations=bool(a.use_terminations), num_primitives=num_primitives,
                                generators=generators)
    return policy


def _transfer_policy(cfg: DictConfig, source: HierarchicalPolicy, env: MultitaskEnv | PopulationEnv, num_slots: int,
                     generators: Generators = (None,)) -> HierarchicalPolicy:
    """A fresh policy for the transfer slots whose encoder and priors are those learned in option learning."""
    primitives = env.action_dim if cfg.algo.primitive_options else 0
    policy = _make_policy(cfg, env, num_slots, num_primitives=primitives, generators=generators)
    shared = {k: v for k, v in source.state_dict().items()
              if k.startswith(("encoder.", "prior_intra.", "prior_termination.", "prior_log_std"))}
    policy.load_state_dict(shared, strict=False)
    policy.start_transfer(frozen=bool(cfg.algo.frozen), generators=generators,
                          fresh_control_encoder=bool(cfg.algo.fresh_master_encoder))
    return policy


def make_msol_phase(cfg: DictConfig, spec: PhaseSpec, env: PopulationEnv, previous: MSOLLearner | None,
                    generators: Generators) -> MSOLLearner:
    """Option learning and "scratch": a fresh policy. Transfer: the learned encoder and priors, frozen, with
    posteriors starting from them (when resuming straight into transfer the checkpoint brings the weights)."""
    if spec.name in ("options", "scratch"):
        policy = build_on_cpu(lambda: _make_policy(cfg, env, spec.num_slots, generators=generators),
                              learner_device(cfg))
    else:
        def transfer_policy() -> HierarchicalPolicy:
            source = previous.policy if previous is not None else \
                _make_policy(cfg, env, int(cfg.algo.num_slots), generators=generators)
            return _transfer_policy(cfg, source, env, spec.num_slots, generators)

        policy = build_on_cpu(transfer_policy, learner_device(cfg))
    return MSOLLearner(cfg, spec, policy, env, generators)


@register_algorithm("msol", action_spaces=("discrete", "continuous"), devices=("cpu", "cuda"), populations=True,
                    settings=SoftOptionsSettings,
                    description="Multitask Soft Option Learning (soft options fine-tuned after transfer)")
def train_msol(cfg: DictConfig, runs: list[Run]) -> list[dict[str, float]]:
    """Option learning (with regular task-slot resets) then transfer, in the shared protocol loop; every member of
    the population at once."""
    return run_protocol(runs, make_msol_phase, phases=build_phases(cfg, task_names(cfg)))


# The baselines that are special cases of the hierarchy share its trainer (configs/algo/<name>.yaml set them up).
for _name, _spaces, _description in (
    ("msol_frozen", ("discrete", "continuous"), "MSOL(frozen): options learned softly, used hard after transfer"),
    ("distral", ("discrete", "continuous"), "DISTRAL: one option, no master/termination, KL to a distilled prior"),
    ("distral_action", ("discrete",), "DISTRAL(+action): DISTRAL whose networks also see the previous action"),
    ("a2c", ("discrete", "continuous"), "flat A2C from scratch on the transfer tasks (beta = 0, no prior)"),
    ("ppo", ("discrete", "continuous"), "flat PPO from scratch on the transfer tasks (beta = 0, no prior)"),
    ("hard_options", ("discrete", "continuous"), "options used as fixed (hard) options after transfer"),
    ("hard_options_primitives", ("discrete",), "hard options plus the primitive actions as one-step options"),
):
    register_algorithm(_name, action_spaces=_spaces, description=_description, devices=("cpu", "cuda"),
                       populations=True, settings=SoftOptionsSettings)(train_msol)
