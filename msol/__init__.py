"""msol: Multitask Soft Option Learning and hierarchical multitask RL baselines.

Installed, the package has one top-level name: the repository's ``envs/``, ``baselines/`` and ``configs/`` folders
are ``msol.envs``, ``msol.baselines`` and ``msol.configs``. Importing ``msol`` also registers the ``msol/`` gymnasium
environments (``msol.envs``).
"""

from pathlib import Path as _Path

# Run from a source checkout (e.g. a git worktree at another commit, ``python -m msol.train`` with the checkout as
# the working directory), msol.envs, msol.baselines and msol.configs are that checkout's folders next to msol/, not
# those of wherever the package was installed from.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "envs" / "__init__.py").is_file():
    __path__.append(str(_checkout))

from msol import envs  # noqa: F401  (registers gymnasium ids under the msol/ namespace; after __path__ is set)

__version__ = "0.1.0"
