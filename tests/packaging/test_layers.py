"""The layers stay visible: the framework (``msol.common``) imports no algorithm, the baselines never import MSOL's
learner (``msol.soft_options``), and the environments import nothing of the learners. Checked on the source's
import statements, so a violation fails here before it becomes a tangle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# folder -> the msol sub-packages its modules may not import
FORBIDDEN = {
    "msol/common": ("msol.soft_options", "msol.baselines", "msol.train", "msol.plot", "msol.sweep_status",
                    "msol.reference"),
    "baselines": ("msol.soft_options", "msol.reference"),  # a campaign script may call the entry, msol.train
    "envs": ("msol.common", "msol.soft_options", "msol.baselines", "msol.train", "msol.plot"),
}


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement of ``path`` names (``from msol import x`` counts as ``msol.x``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _violations(folder: str) -> list[str]:
    bad = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[folder]):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(folder):
    assert _violations(folder) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from msol.soft_options.networks import HierarchicalPolicy\nfrom msol import plot\n")
    assert imported_modules(module) == ["msol.soft_options.networks", "msol.soft_options.networks.HierarchicalPolicy",
                                        "msol", "msol.plot"]


def test_importing_every_learner_leaves_torchs_distribution_validation_default_alone():
    import subprocess
    import sys

    code = ("import torch\nbefore = torch.distributions.Distribution._validate_args\n"
            "from msol.common.algorithms import available_algorithms\navailable_algorithms()\n"
            "assert torch.distributions.Distribution._validate_args == before, 'changed'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
