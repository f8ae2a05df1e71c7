"""msol: Multitask Soft Option Learning and hierarchical multitask RL baselines.

Installed, the package has one top-level name: the repository's ``envs/``, ``baselines/`` and ``configs/`` folders
are ``msol.envs``, ``msol.baselines`` and ``msol.configs``. Importing ``msol`` also registers the ``msol/`` gymnasium
environments (``msol.envs``).
"""

import importlib.util as _util
import sys as _sys
from pathlib import Path as _Path

_CHECKOUT = _Path(__file__).resolve().parent.parent
_FOLDERS = ("envs", "baselines", "configs")


class _CheckoutFolders:
    """Run from a source checkout (e.g. a git worktree at another commit, ``python -m msol.train`` with the
    checkout as the working directory), ``msol.envs``, ``msol.baselines`` and ``msol.configs`` are that checkout's
    folders next to ``msol/``, not those of the checkout the package was installed from."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> object:
        head, _, name = fullname.partition(".")
        if head != "msol" or name not in _FOLDERS:
            return None
        folder = _CHECKOUT / name
        return _util.spec_from_file_location(fullname, folder / "__init__.py",
                                             submodule_search_locations=[str(folder)])


if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "envs" / "__init__.py").is_file():
    _sys.meta_path.insert(0, _CheckoutFolders)

from msol import envs  # noqa: F401  (registers gymnasium ids under the msol/ namespace)

__version__ = "0.1.0"
