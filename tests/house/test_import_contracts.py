"""The house's import contracts hold on the tree and bite on a planted break.

`make lint` runs `lint-imports`; these tests show the contracts it checks are not vacuous:
each planted import (one up a layer, one from the replay server into a loader, one into
another package's private module) breaks exactly the contract written against it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "lake", "ingest", "replay", "warehouse", "ml", "pipeline", "api", "btcfs")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy(tree: Path) -> Path:
    for package in (*PACKAGES, "drills", "scripts"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__", "static")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=300
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken", "count"),
    [
        ("core/settings.py", "import api.settings", "Every import runs down the layers", 1),
        ("lake/store.py", "import ingest.config", "Every import runs down the layers", 1),
        ("warehouse/runs.py", "import ingest.config", "Every import runs down the layers", 1),
        # replay/ and ingest/ are siblings too: the layers contract breaks with it.
        ("replay/market.py", "import ingest.vendors.fred", "independently of the loaders", 2),
        ("api/app.py", "import ingest._client", "another package's private module", 1),
    ],
)
def test_a_planted_import_breaks_its_contract(
    tmp_path: Path, module: str, planted: str, broken: str, count: int
) -> None:
    tree = _copy(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{planted}  # planted by the test\n")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout
    assert f"{broken} BROKEN" in result.stdout, result.stdout
    assert f"{3 - count} kept, {count} broken" in result.stdout, result.stdout
