"""msol: Multitask Soft Option Learning and hierarchical multitask RL baselines.

Importing ``msol`` also registers the ``msol/`` gymnasium environments (``import envs``).
"""

import envs  # noqa: F401  (registers gymnasium ids under the msol/ namespace)

__version__ = "0.1.0"
