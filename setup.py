"""The package list for ``pyproject.toml``'s ``package-dir`` mapping (pyproject alone cannot rename found packages).

Every folder with an ``__init__.py`` under msol/, envs/ and baselines/ becomes a package under its installed name
(envs/taxi.py -> msol.envs.taxi); configs/ is one package whose YAML files (config groups in sub-folders) are its
data.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {"msol": "msol", "msol.envs": "envs", "msol.baselines": "baselines", "msol.configs": "configs"}


def packages() -> list[str]:
    found = []
    for name, folder in ROOTS.items():
        for path in sorted(Path(folder).rglob("*")):
            if path.is_dir() and (path / "__init__.py").exists() and "__pycache__" not in path.parts:
                found.append(".".join([name, *path.relative_to(folder).parts]))
        found.append(name)
    return sorted(set(found))


setup(packages=packages())
