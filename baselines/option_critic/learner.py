"""A2OC on a batched multitask env: one phase as ``iterate`` = collect ``n`` steps of every env → one update.

Call-and-return execution, per env: at ``s_t`` the previous option ``o_{t−1}`` terminates with ``β(s_t, o_{t−1})``
(always at an episode's first step, where no cost is paid); a terminated option is replaced ε-greedily on
``Q(s_t, ·)``; ``a_t ~ π(·|s_t, o_t)``. The termination of ``o_t`` is therefore decided at ``s_{t+1}``, which is
where its gradient is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from msol.baselines.option_critic.losses import a2oc_loss, arrival_value, nstep_targets
from msol.baselines.option_critic.networks import OptionCriticNetwork
from msol.common.envs_adapter import MultitaskEnv
from msol.common.numerics import check_finite, check_finite_grads
from msol.common.option_map import plot_option_map
from msol.common.protocol import PhaseSpec, episode_row, evaluate_episodes, mean_stats
from msol.common.run import Run


@dataclass
class OCRollout:
    """Time-major ``[T, B]``; ``switched`` = the previous option terminated at this step (not a first step);
    ``bootstrap`` = ``U(final obs, o_t)`` on truncated steps."""

    obs: torch.Tensor
    option: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    switched: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    bootstrap: torch.Tensor

    @classmethod
    def allocate(cls, steps: int, num_envs: int, obs_dim: int, device: torch.device) -> OCRollout:
        shapes = {"obs": (obs_dim,)}
        dtypes = {"option": torch.long, "action": torch.long}
        return cls(**{f.name: torch.zeros(steps, num_envs, *shapes.get(f.name, ()),
                                          dtype=dtypes.get(f.name, torch.float32), device=device)
                      for f in fields(cls)})


@torch.no_grad()
def oc_step(net: OptionCriticNetwork, obs: torch.Tensor, task: torch.Tensor, option_prev: torch.Tensor,
            first: torch.Tensor, epsilon: float, greedy: bool = False
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(option, action, switched)`` for every env: terminate? → ε-greedy option → action.

    ``greedy`` (evaluation episodes with ``eval.greedy``): terminate where β > ½, greedy option, argmax action.
    Random draws come from torch's global CPU generator (``msol.common.device``): a seed acts alike on every
    device, and a checkpoint's generator state resumes it exactly."""
    heads = net(obs, task)
    device, n = obs.device, obs.shape[0]
    rows = torch.arange(n, device=device)
    if greedy:
        terminate = (heads.beta[rows, option_prev] > 0.5) | first
        option = torch.where(terminate, heads.q.argmax(dim=-1), option_prev)
        return option, heads.logits[rows, option].argmax(-1), (terminate & ~first).float()
    terminate = (torch.rand(n, device="cpu").to(device) < heads.beta[rows, option_prev]) | first
    explore = torch.rand(n, device="cpu").to(device) < epsilon
    random_option = torch.randint(net.num_options, option_prev.shape, device="cpu").to(device)
    choice = torch.where(explore, random_option, heads.q.argmax(dim=-1))
    option = torch.where(terminate, choice, option_prev)
    logits = heads.logits[rows, option].cpu()
    action = torch.distributions.Categorical(logits=logits, validate_args=False).sample().to(device)
    return option, action, (terminate & ~first).float()


class OptionCriticLearner:
    """One protocol phase of A2OC; implements ``PhaseLearner``."""

    def __init__(self, cfg: DictConfig, spec: PhaseSpec, env: MultitaskEnv, net: OptionCriticNetwork) -> None:
        self.a = SimpleNamespace(**OmegaConf.to_container(cfg.algo, resolve=True))
        self.spec, self.env, self.model = spec, env, net
        self.device = next(net.parameters()).device
        self.greedy_eval = bool(cfg.eval.greedy)
        self.num_envs, self.num_slots = env.num_envs, spec.num_slots
        self.slot = torch.as_tensor(env.slot_of_env, dtype=torch.long, device=self.device)
        self.task = task_ids(env, device=self.device)
        self.n_steps = int(self.a.n_steps)
        self.storage = OCRollout.allocate(self.n_steps, self.num_envs, env.obs_dim, self.device)
        if self.a.optimizer == "rmsprop":
            self.optimizer = torch.optim.RMSprop(net.parameters(), lr=self.a.lr, alpha=self.a.rmsprop_alpha,
                                                 eps=self.a.eps)
        elif self.a.optimizer == "adam":
            self.optimizer = torch.optim.Adam(net.parameters(), lr=self.a.lr, eps=self.a.eps)
        else:
            raise ValueError(f"algo.optimizer={self.a.optimizer!r}; valid: rmsprop, adam")
        self.frames = 0
        self.obs = torch.zeros(self.num_envs, env.obs_dim, device=self.device)
        self.option = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.first = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        self.episodes: list[tuple[int, float]] = []
        self.update_stats: list[dict[str, float]] = []

    # ------------------------------------------------------------------ PhaseLearner
    @property
    def frames_per_iteration(self) -> int:
        return self.n_steps * self.num_envs // self.num_slots

    def start(self, seed: int) -> None:
        self.obs = torch.as_tensor(self.env.reset(seed=seed), dtype=torch.float32, device=self.device)
        self.first[:] = True

    def iterate(self) -> None:
        self.collect()
        self.update()

    def collect(self) -> None:
        st, a = self.storage, self.a
        for t in range(self.n_steps):
            option, action, switched = oc_step(self.model, self.obs, self.task, self.option, self.first, a.epsilon)
            st.obs[t], st.option[t], st.action[t], st.switched[t] = self.obs, option, action, switched
            out = self.env.step(action.cpu().numpy())
            st.reward[t], st.terminated[t], st.truncated[t] = out.tensors(self.device)
            st.bootstrap[t] = 0.0
            if (cut := out.truncated_final_obs(self.device)) is not None:
                idx, final = cut
                with torch.no_grad():
                    st.bootstrap[t, idx] = arrival_value(self.model(final, self.task[idx]), option[idx], a.epsilon)
            for env_index, ret in out.episode_returns:
                self.episodes.append((int(self.slot[env_index]), ret))
            self.obs = torch.as_tensor(out.obs, dtype=torch.float32, device=self.device)
            self.option = option
            self.first = torch.as_tensor(out.terminated | out.truncated, device=self.device)
        self.frames += self.frames_per_iteration

    def update(self) -> None:
        st, a, T = self.storage, self.a, self.n_steps
        check_finite("observations", st.obs)
        # One forward over s_0 … s_T: rows 0..T−1 are the transitions' states, rows 1..T their next states.
        obs_all = torch.cat([st.obs, self.obs.unsqueeze(0)]).flatten(0, 1)
        heads = self.model(obs_all, self.task.repeat(T + 1))
        n = T * self.num_envs
        now, nxt = heads.rows(slice(0, n)), heads.rows(slice(self.num_envs, n + self.num_envs))
        with torch.no_grad():
            last_u = arrival_value(heads.rows(slice(n, n + self.num_envs)), self.option, a.epsilon)
            y = nstep_targets(st.reward, st.switched, st.terminated, st.truncated, st.bootstrap, last_u, a.gamma,
                              a.deliberation_cost).flatten()
        # s_{t+1} is the next episode's first state where the episode ended at t: no termination is decided there.
        next_valid = (1.0 - st.terminated - st.truncated).clamp_min(0.0).flatten()
        loss, stats = a2oc_loss(now, nxt, st.option.flatten(), st.action.flatten(), y, next_valid,
                                epsilon=a.epsilon, eta=a.deliberation_cost, margin=a.termination_margin,
                                entropy_coef=a.entropy_coef, critic_coef=a.value_coef)
        check_finite("loss", loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), a.max_grad_norm)
        if not torch.isfinite(grad_norm):
            check_finite_grads(self.model)
        self.optimizer.step()
        usage = torch.bincount(st.option.flatten(), minlength=self.model.num_options).float() / st.option.numel()
        stats.update({f"option_usage/{k}": usage[k].item() for k in range(self.model.num_options)})
        stats["termination_rate"] = st.switched.mean().item()
        self.update_stats.append(stats)

    # ------------------------------------------------------------------ logging, evaluation, checkpoints
    def pop_log_row(self) -> dict[str, float]:
        row = mean_stats(self.update_stats)
        row.update(episode_row(self.episodes, self.env.slot_tasks))
        self.episodes, self.update_stats = [], []
        return row

    def finish_phase(self, run: Run) -> dict[str, float]:
        """The option map of this phase on grid envs (``msol.common.option_map.plot_option_map``): on each cell the option
        with the highest ``Q(s, o)`` for the task, ``x`` where its ``β(s, o) > 0.5``."""
        tasks = list(self.env.tasks)

        @torch.no_grad()
        def choose(obs: torch.Tensor, slot: int) -> tuple[np.ndarray, np.ndarray]:
            obs = obs.to(self.device)
            task = torch.full((obs.shape[0],), tasks.index(self.env.slot_tasks[slot]), dtype=torch.long,
                              device=self.device)
            heads = self.model(obs, task)
            option = heads.q.argmax(-1)
            beta = heads.beta[torch.arange(obs.shape[0], device=self.device), option]
            return option.cpu().numpy(), beta.cpu().numpy()

        figure = plot_option_map(self.env, run.dir / "figures" / f"options_{self.spec.name}.png", choose,
                                 self.model.num_options)
        if figure is not None:
            run.log_image(f"figures/options_{self.spec.name}", figure)
        return {}

    def evaluate(self, env: MultitaskEnv, seed: int) -> dict[str, float]:
        """One episode per eval env: greedy with ``eval.greedy`` (as MSOL's evaluation), else acting as in training
        (ε-greedy options, sampled terminations and actions); the row's ``greedy`` column says which."""
        task = task_ids(env, self.env.slot_tasks, device=self.device)
        option = torch.zeros(env.num_envs, dtype=torch.long, device=self.device)

        def act(obs: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
            nonlocal option
            option, action, _ = oc_step(self.model, obs, task, option, first > 0, self.a.epsilon, self.greedy_eval)
            return action

        row = evaluate_episodes(env, seed=seed, slot_tasks=self.env.slot_tasks, act=act, device=self.device)
        row["greedy"] = float(self.greedy_eval)
        return row

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "frames": self.frames,
                "obs": self.obs.clone(), "option": self.option.clone(), "first": self.first.clone(),
                "env": self.env.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.frames = int(state["frames"])
        self.obs, self.option, self.first = (state[k].to(self.device) for k in ("obs", "option", "first"))
        self.env.set_state(state["env"])


def task_ids(env: MultitaskEnv, slot_tasks: list[str] | None = None, *, device: torch.device) -> torch.Tensor:
    """Each env's task (its slot's, from ``slot_tasks`` or the env's own) as an index into the family's full task
    list: the one-hot the network reads."""
    index = {name: i for i, name in enumerate(env.tasks)}
    slot_tasks = env.slot_tasks if slot_tasks is None else slot_tasks
    return torch.as_tensor([index[slot_tasks[s]] for s in env.slot_of_env], dtype=torch.long, device=device)

