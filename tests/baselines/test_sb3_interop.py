"""Our registered envs plug into stable-baselines3 as they are: make_vec_env + PPO, and check_env."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env

from msol import envs  # noqa: F401


@pytest.mark.parametrize("env_id, kwargs", [("msol/Taxi-v0", {"task": "R-G"}),
                                            ("msol/MovingBandits-v0", {"task": "goal0"}),
                                            ("msol/DirectionalTaxi-v0", {"task": "B-Y", "mode": "test"})])
def test_sb3_ppo_trains_on_registered_env(env_id, kwargs):
    vec = make_vec_env(env_id, n_envs=4, seed=0, env_kwargs=kwargs)
    model = PPO("MlpPolicy", vec, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu",
                policy_kwargs={"net_arch": [32]})
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=512)
    assert model.num_timesteps >= 512
    assert any(not np.allclose(b.numpy(), a.detach().numpy()) for b, a in zip(before, model.policy.parameters()))
    action, _ = model.predict(vec.reset(), deterministic=True)
    assert action.shape == (4,) and vec.action_space.contains(int(action[0]))


@pytest.mark.parametrize("env_id", ["msol/Taxi-v0", "msol/MovingBandits-v0", "msol/DirectionalTaxi-v0"])
def test_sb3_env_checker_accepts_env(env_id):
    import gymnasium

    sb3_check_env(gymnasium.make(env_id).unwrapped, warn=True)
