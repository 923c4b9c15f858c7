"""The package's layers (``.importlinter``; README, "Layout") hold: no import runs back up, and the shells reach the
method only through the API. The contracts are checked on the package as it is, and shown to catch a planted
upward import, a shell reaching into ``inversion``, and a new module left out of the layers."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.is_file(), reason="import-linter is not installed (pip install -e '.[test]')")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", str(root / ".importlinter")], cwd=root, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_package_keeps_its_layers():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("rls_lightning/names.py", "from . import api", "Layers run one way"),  # a helper importing the door
    ("rls_lightning/stylegan/layers.py", "from ..inversion import l1_ball", "Layers run one way"),
    ("rls_lightning/api/settings.py", "def f():\n    from ..cli import errors", "Layers run one way"),  # lazy too
    ("rls_lightning/cli/errors.py", "from ..inversion import presets", "only through the API"),
    ("rls_lightning/app/controls.py", "from ..photos import paste", "only through the API"),
])
def test_a_planted_import_breaks_a_contract(tmp_path, module, line, broken):
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "rls_lightning", copy / "rls_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    target = copy / module
    target.write_text(target.read_text() + f"\n\n{line}\n")
    result = lint(copy)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout


def test_a_module_outside_every_layer_is_refused(tmp_path):
    copy = tmp_path / "checkout"
    shutil.copytree(ROOT / "rls_lightning", copy / "rls_lightning", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    (copy / "rls_lightning" / "stray.py").write_text('"""A module nobody placed in a layer."""\n')
    result = lint(copy)
    assert result.returncode != 0 and "stray" in result.stdout + result.stderr
