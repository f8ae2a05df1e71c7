"""Agents, metrics and experiments for the Erdős–Selfridge–Spencer attacker-defender games (docs/ess.md).

``agents`` (SB3 PPO / A2C / DQN, linear or 2×300), ``metrics`` (win rate, optimal moves, fatal mistakes, mistakes
by distance to the end), ``supervised`` (the same network classifying optimal moves on the RL agent's states),
``multiagent`` (alternating attacker / defender training), ``entry`` (the ``algo=`` trainers of msol.train) and
``report`` (tables and figures of the experiments).
"""

from msol.baselines.ess import entry as _entry  # noqa: F401  (registers algo=sb3_ppo|sb3_a2c|sb3_dqn|ess_*)
