"""Option-Critic in its synchronous advantage form (A2OC; Bacon et al. 2017, Harb et al. 2018), multitask with the
task id as input (docs/spec/baselines.md "Option-Critic").

Modules in reading order: ``networks`` (trunk, Q, intra-option, termination heads), ``losses`` (ε-greedy value,
arrival value, deliberation cost, termination term at s', A2OC loss), ``learner`` (collect / update of one phase),
``entry`` (``algo=option_critic``). Documentation: docs/baselines.md.
"""

from msol.baselines.option_critic.learner import OptionCriticLearner
from msol.baselines.option_critic.networks import OptionCriticNetwork

__all__ = ["OptionCriticLearner", "OptionCriticNetwork"]

from msol.baselines.option_critic import entry as _entry  # noqa: F401  (registers algo=option_critic)
