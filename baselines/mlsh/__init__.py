"""MLSH (Frans et al. 2017, "Meta Learning Shared Hierarchies") on the MSOL protocol (docs/spec/baselines.md "MLSH").

Modules in reading order: ``networks`` (per-task masters, shared sub-policies), ``storage`` (one rollout),
``losses`` (W/U schedule, macro-level GAE, PPO terms), ``learner`` (collect / update of one phase), ``probe``
(which goal each sub-policy reaches in Moving Bandits), ``protocol`` (the option-learning → transfer loop shared
with Option-Critic), ``entry`` (``algo=mlsh``). Documentation: docs/baselines.md.
"""

from msol.baselines.mlsh.learner import MLSHLearner
from msol.baselines.mlsh.networks import MLSHPolicy

__all__ = ["MLSHLearner", "MLSHPolicy"]

from msol.baselines.mlsh import entry as _entry  # noqa: F401  (registers algo=mlsh)
