"""MSOL-A2C option learning in one file: read this first.

The package spreads one MSOL update over the policy (``msol.soft_options.networks``), acting (``msol.soft_options.acting``), the rollout
(``msol.soft_options.storage``), the losses (``msol.soft_options.losses``) and the learner (``msol.soft_options.trainer``), because it also serves eight
algorithms, populations of seeds, PPO, transfer, resume and W&B. This file is the same algorithm for one run,
option learning only, discrete actions, in the order it happens: networks, acting, rollout, regularised reward,
n-step returns, the four loss terms, the optimiser step, task-slot resets. ``tests/msol/test_reference.py`` copies
its weights into the package's policy and checks that one update on the same batch gives the same loss and the same
gradients, so what you read here is what the package computes.

Notation (docs/spec/msol.md): per task slot ``i`` the posteriors ``q^H_i`` (master), ``q^T_i`` (termination),
``q^L_i`` (intra-option) and the value ``V_i``; shared priors ``p^L_θ`` and ``p^T_θ``; ``b_t = 1`` when the
previous option ``z_{t-1}`` terminates.

    python -m msol.reference [--frames-per-task 20000] [--seed 0]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical
from torch.nn import functional as F


@dataclass
class Args:
    env: str = "moving_bandits"
    """config name under configs/env/ (a discrete-action multitask env)"""
    seed: int = 0
    """seeds torch and the envs"""
    num_options: int = 2
    """number of shared options m"""
    num_slots: int = 10
    """task slots: each has its own master, termination, value and intra-option heads"""
    envs_per_slot: int = 3
    """parallel envs per slot"""
    hidden: tuple[int, ...] = (64, 64)
    """the trunk's hidden layers (ReLU)"""
    option_embedding: int = 128
    """width of the option embedding fed to the option layer"""
    encoder_output_size: int = 64
    """width of the option layer f(h, z), the features every head reads"""
    n_steps: int = 5
    """rollout length per env per update (A2C)"""
    gamma: float = 0.95
    """discount"""
    lr: float = 1e-3
    """RMSprop step size"""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing"""
    eps: float = 5e-5
    """RMSprop epsilon"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    alpha: float = 0.95
    """fixed termination prior during option learning: p^T(b = 1) = 1 − α"""
    beta: float = 0.2
    """β, the weight of the KL terms in the regularised reward"""
    entropy_coef: float = 0.05
    """λ_H, the entropy bonus on q^L, q^H, q^T"""
    value_coef: float = 0.5
    """λ_V (2 λ_V = λ_A = λ_P = 1)"""
    policy_coef: float = 1.0
    """λ_A"""
    prior_coef: float = 1.0
    """λ_P: prior distillation"""
    frames_per_task: int = 600_000
    """option-learning frames per task slot"""
    slot_reset_frames_per_task: int = 200_000
    """every slot's heads are re-initialised this often (staggered over the slots)"""
    log_every: int = 10_000
    """frames per task between printed lines"""
    extra: dict[str, str] = field(default_factory=dict)
    """further Hydra overrides for the env config"""


# ---------------------------------------------------------------------------------------------------- networks
def init_linear(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights with ``gain``, zero bias (docs/spec/msol.md, "Initialisation")."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class MSOLAgent(nn.Module):
    """Encoder shared by every slot, posterior heads per slot (plain ``nn.Linear`` in a ``ModuleList``), priors
    shared. ReLU layers get gain √2, policy heads 0.01 (every policy starts uniform), the value head 1."""

    def __init__(self, obs_dim: int, num_actions: int, args: Args) -> None:
        super().__init__()
        widths = [obs_dim, *args.hidden]
        self.trunk = nn.Sequential(*[m for a, b in itertools.pairwise(widths) for m in
                                     (init_linear(nn.Linear(a, b), math.sqrt(2)), nn.ReLU())])
        self.option_embed = init_linear(nn.Linear(args.num_options, args.option_embedding), 1.0)
        self.option_layer = init_linear(nn.Linear(widths[-1] + args.option_embedding, args.encoder_output_size),
                                        math.sqrt(2))
        F_ = args.encoder_output_size
        self.master = nn.ModuleList(init_linear(nn.Linear(F_, args.num_options), 0.01) for _ in range(args.num_slots))
        self.termination = nn.ModuleList(init_linear(nn.Linear(F_, 2), 0.01) for _ in range(args.num_slots))
        self.value = nn.ModuleList(init_linear(nn.Linear(F_, 1), 1.0) for _ in range(args.num_slots))
        self.intra = nn.ModuleList(init_linear(nn.Linear(F_, num_actions), 0.01) for _ in range(args.num_slots))
        self.prior_intra = init_linear(nn.Linear(F_, num_actions), 0.01)
        self.prior_termination = init_linear(nn.Linear(F_, 2), 0.01)
        self.num_options = args.num_options

    def f(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Option-conditioned features ``f(h, z) = ReLU(W [h, Embed(onehot z)] + b)``."""
        embedding = self.option_embed(F.one_hot(z, self.num_options).to(h.dtype))
        return F.relu(self.option_layer(torch.cat([h, embedding], -1)))

    @staticmethod
    def per_slot(heads: nn.ModuleList, x: torch.Tensor, slot: torch.Tensor) -> torch.Tensor:
        """Row ``r`` through ``heads[slot[r]]``."""
        out = x.new_zeros(x.shape[0], heads[0].out_features)
        for i, head in enumerate(heads):
            rows = slot == i
            out = out.index_put((rows,), head(x[rows]))
        return out

    def forward(self, obs: torch.Tensor, z_prev: torch.Tensor, z: torch.Tensor, slot: torch.Tensor) -> dict:
        """Every head at ``(s_t, z_{t-1})`` and ``(s_t, z_t)``: logits of q^H (which reads ``f(h, 0)``: the master
        never sees ``z_{t-1}``), q^T and p^T_θ at ``z_{t-1}``, q^L and p^L_θ at ``z_t``, and ``V_i(s_t, z_{t-1})``."""
        h = self.trunk(obs)
        f_prev, f_cur, f_0 = self.f(h, z_prev), self.f(h, z), self.f(h, torch.zeros_like(z))
        return {"master": self.per_slot(self.master, f_0, slot),
                "termination": self.per_slot(self.termination, f_prev, slot),
                "prior_termination": self.prior_termination(f_prev),
                "intra": self.per_slot(self.intra, f_cur, slot),
                "prior_intra": self.prior_intra(f_cur),
                "value": self.per_slot(self.value, f_prev, slot).squeeze(-1)}


# ---------------------------------------------------------------------------------------------------- acting
@torch.no_grad()
def act(agent: MSOLAgent, obs: torch.Tensor, z_prev: torch.Tensor, first: torch.Tensor, slot: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``b_t ~ q^T(·|s_t, z_{t-1})`` (1 on an episode's first step), ``z_t ~ q^H(·|s_t)`` where ``b_t = 1`` (else
    ``z_{t-1}``), ``a_t ~ q^L(·|s_t, z_t)``. Also ``b̂_t = 1[ẑ_t ≠ z_{t-1}]`` for a fresh master sample ``ẑ_t``:
    the target p^T_θ distils ("would the master switch if it could")."""
    out = agent(obs, z_prev, z_prev, slot)
    b = torch.where(first > 0, 1, Categorical(logits=out["termination"]).sample())
    z_hat = Categorical(logits=out["master"]).sample()
    z = torch.where(b == 1, z_hat, z_prev)
    action = Categorical(logits=agent(obs, z_prev, z, slot)["intra"]).sample()
    return b, z, action, (z_hat != z_prev).long()


@dataclass
class Batch:
    """One rollout, ``[T, B]`` (time-major); ``bootstrap`` = ``V(final obs, z_t)`` where an episode was cut by the
    time limit (a cut is not an end: the return bootstraps through it)."""

    obs: torch.Tensor
    z_prev: torch.Tensor
    z: torch.Tensor
    b: torch.Tensor
    action: torch.Tensor
    first: torch.Tensor
    z_hat_switch: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    bootstrap: torch.Tensor


# ---------------------------------------------------------------------------------------------------- the update
def nstep_returns(R: torch.Tensor, batch: Batch, last_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """``G_t = R_t + γ G_{t+1}``, 0 after a termination, ``V(final obs)`` after a time-limit cut, ``V(s_T, z_{T-1})``
    after the rollout."""
    G, next_return = torch.empty_like(R), last_value
    for t in reversed(range(R.shape[0])):
        next_return = torch.where(batch.truncated[t] > 0, batch.bootstrap[t], next_return)
        G[t] = R[t] + gamma * (1.0 - batch.terminated[t]) * next_return
        next_return = G[t]
    return G


def a2c_loss(agent: MSOLAgent, batch: Batch, slot: torch.Tensor, last_value: torch.Tensor, args: Args,
             beta: float, entropy_coef: float) -> torch.Tensor:
    """``mean(λ_V L_V + λ_A L_A + λ_P L_P + L_H)`` over every row of every slot."""
    T, B = batch.reward.shape
    def rows(x: torch.Tensor) -> torch.Tensor:  # [T, B, ...] -> [T·B, ...]
        return x.reshape(T * B, *x.shape[2:])

    out = agent(rows(batch.obs), rows(batch.z_prev), rows(batch.z), slot.repeat(T))
    q_L, p_L = Categorical(logits=out["intra"]), Categorical(logits=out["prior_intra"])
    q_H = Categorical(logits=out["master"])
    q_T, p_T_learned = Categorical(logits=out["termination"]), Categorical(logits=out["prior_termination"])
    a, z, b, first = rows(batch.action), rows(batch.z), rows(batch.b), rows(batch.first)
    logq_L, logp_L, logq_H, logq_T = q_L.log_prob(a), p_L.log_prob(a), q_H.log_prob(z), q_T.log_prob(b.long())
    # Regularised reward R_t = r_t − β ln(q^L/p^L) − β ln(q^T/p^T)(1 − first_t), p^T(b=1) = 1 − α fixed; no
    # gradient through it. The master's own KL term is replaced by its entropy bonus (paper appendix).
    logp_T = torch.where(b == 1, math.log(1.0 - args.alpha), math.log(args.alpha)).to(logq_T.dtype)
    R = rows(batch.reward) - beta * (logq_L - logp_L) - beta * (logq_T - logp_T) * (1.0 - first)
    G = nstep_returns(R.detach().view(T, B), batch, last_value, args.gamma).reshape(-1)
    A = G - out["value"]
    L_V = A.pow(2)                                                                     # value
    L_A = -A.detach() * (logq_L + b * logq_H + (1.0 - first) * logq_T)                # policy gradient, joint choice
    L_P = -logp_L - (1.0 - first) * p_T_learned.log_prob(rows(batch.z_hat_switch))    # priors distil the posteriors
    L_H = -entropy_coef * (q_L.entropy() + b * q_H.entropy() + (1.0 - first) * q_T.entropy())  # entropy bonus
    return (args.value_coef * L_V + args.policy_coef * L_A + args.prior_coef * L_P + L_H).mean()


def optimiser_step(agent: MSOLAgent, optimizer: torch.optim.Optimizer, loss: torch.Tensor, args: Args) -> None:
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
    optimizer.step()


@torch.no_grad()
def reset_slot(agent: MSOLAgent, optimizer: torch.optim.Optimizer, slot: int) -> None:
    """A slot starts over on its task: fresh master, termination, value and intra-option heads, and that slot's
    optimiser statistics zeroed (its task and the shared encoder and priors stay)."""
    for heads, gain in ((agent.master, 0.01), (agent.termination, 0.01), (agent.value, 1.0), (agent.intra, 0.01)):
        init_linear(heads[slot], gain)
        for param in heads[slot].parameters():
            for value in optimizer.state.get(param, {}).values():
                if torch.is_tensor(value) and value.shape == param.shape:
                    value.zero_()


# ---------------------------------------------------------------------------------------------------- training
def train(args: Args) -> list[float]:
    """Option learning on ``args.env``; returns the mean episode return of every logged interval."""
    from hydra import compose, initialize_config_module

    from msol.common.envs_adapter import make_env

    torch.manual_seed(args.seed)
    with initialize_config_module(config_module="msol.configs", version_base="1.3"):
        cfg = compose("train", overrides=[f"env={args.env}", *(f"{k}={v}" for k, v in args.extra.items())])
    tasks = list(make_env(cfg, ["__probe__"], mode=str(cfg.env.train_mode), envs_per_slot=1, seed=args.seed).tasks)
    slot_tasks = [tasks[i % len(tasks)] for i in range(args.num_slots)]
    env = make_env(cfg, slot_tasks, mode=str(cfg.env.train_mode), envs_per_slot=args.envs_per_slot, seed=args.seed)
    agent = MSOLAgent(env.obs_dim, env.action_dim, args)
    optimizer = torch.optim.RMSprop(agent.parameters(), lr=args.lr, alpha=args.rmsprop_alpha, eps=args.eps)
    slot = torch.as_tensor(env.slot_of_env, dtype=torch.long)
    obs = torch.as_tensor(env.reset(seed=args.seed), dtype=torch.float32)
    z_prev = torch.zeros(env.num_envs, dtype=torch.long)
    first = torch.ones(env.num_envs)
    resets_done = np.zeros(args.num_slots, dtype=np.int64)
    returns, logged, frames, next_log = [], [], 0, args.log_every
    while frames < args.frames_per_task:
        # Regular, staggered task-slot resets: slot i resets when frames + i/n · interval crosses an interval.
        interval = args.slot_reset_frames_per_task
        due = (frames + np.arange(args.num_slots) * interval // args.num_slots) // interval
        for i in np.flatnonzero(due > resets_done):
            resets_done[i] = due[i]
            reset_slot(agent, optimizer, int(i))
            env_idx, new_obs = env.assign_task(int(i), slot_tasks[i])
            obs[env_idx], first[env_idx] = torch.as_tensor(new_obs, dtype=torch.float32), 1.0
        steps = []
        for _ in range(args.n_steps):  # rollout
            b, z, action, z_hat_switch = act(agent, obs, z_prev, first, slot)
            out = env.step(action.numpy())
            reward, terminated, truncated = out.tensors(torch.device("cpu"))
            bootstrap = torch.zeros(env.num_envs)
            if (cut := out.truncated_final_obs(torch.device("cpu"))) is not None:
                idx, final = cut
                with torch.no_grad():
                    bootstrap[idx] = agent(final, z[idx], z[idx], slot[idx])["value"]
            steps.append((obs, z_prev, z, b.float(), action, first, z_hat_switch, reward, terminated, truncated,
                          bootstrap))
            returns += [r for _, r in out.episode_returns]
            obs = torch.as_tensor(out.obs, dtype=torch.float32)
            z_prev, first = z, torch.as_tensor(out.terminated | out.truncated, dtype=torch.float32)
        batch = Batch(*(torch.stack(column) for column in zip(*steps)))
        with torch.no_grad():
            last_value = agent(obs, z_prev, z_prev, slot)["value"]
        optimiser_step(agent, optimizer, a2c_loss(agent, batch, slot, last_value, args, args.beta,
                                                  args.entropy_coef), args)
        frames += args.n_steps * args.envs_per_slot
        if frames >= next_log and returns:
            next_log += args.log_every
            logged.append(float(np.mean(returns)))
            print(f"frames per task {frames:>8,}  return {logged[-1]:7.2f}  ({len(returns)} episodes)", flush=True)
            returns = []
    return logged


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames-per-task", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    cli = parser.parse_args()
    train(Args(frames_per_task=cli.frames_per_task, seed=cli.seed))
