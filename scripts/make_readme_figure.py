"""The README's figure, made by the README's own first command with the current defaults:

    python scripts/make_readme_figure.py

runs the program part of that command (``invert.py --lr-dir data/demo/lr8x --hr-dir data/demo/hr``, every argument
as the README writes it) into a temporary folder and copies its ``overview.png`` to
``checkpoints/demo64/demo_overview_8x.png``. ``tests/test_project.py`` runs the same command on four of its faces
(demo02-demo05) and checks them against the figure, so a change of the defaults that changes the pictures fails
there until this script is run again.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIGURE = ROOT / "checkpoints" / "demo64" / "demo_overview_8x.png"


def readme_program() -> list[str]:
    """The arguments after ``.venv/bin/python`` in the README's first command."""
    block = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    first = next(line for line in block.splitlines() if line.strip())
    return shlex.split(first.rsplit("&& .venv/bin/python ", 1)[1])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="rls-readme-") as work:
        out = Path(work) / "out"
        result = subprocess.run([sys.executable, *readme_program(), "--out-dir", str(out)], cwd=ROOT)
        if result.returncode != 0:
            return result.returncode
        shutil.copyfile(out / "overview.png", FIGURE)
    print(f"wrote {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
