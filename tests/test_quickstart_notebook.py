"""``examples/quickstart.ipynb`` runs as a user would run it (offline, a few steps: RLS_QUICKSTART=quick), and shows
what it says: four faces super-resolved x8 and the demo photo restored, with their pictures."""
from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]


def test_the_quickstart_notebook_runs_and_draws_its_pictures(monkeypatch):
    monkeypatch.setenv("RLS_QUICKSTART", "quick")  # the kernel inherits it
    notebook = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # the committed outputs must not stand in for this run's
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    text = ["".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream") for cell in code]
    pictures = [sum("image/png" in out.get("data", {}) for out in cell.outputs) for cell in code]
    faces = [line for line in text[1].splitlines() if line.startswith("demo0")]
    assert [line.split(":")[0] for line in faces] == ["demo00", "demo01", "demo02", "demo03"]
    assert all("factor 8" in line and "W+ (1, 10, 256)" in line for line in faces)
    assert "4 face(s), x4" in text[4]
    assert pictures == [0, 0, 1, 0, 1]  # the faces' grid and the photo's comparison
