"""``examples/quickstart.ipynb`` runs as a user would run it (offline, quick by default: a few steps), and shows what it
says: four faces super-resolved x8 and the demo photo restored, with pictures large enough to compare. Its saved
outputs are those of a full run (``scripts/refresh_quickstart.py``) made with today's default settings."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
PICTURES = [0, 0, 1, 0, 0, 1, 1]  # per code cell: the faces' grid, the whole photo, the crops around its faces
REFRESH = ("run `.venv/bin/python scripts/refresh_quickstart.py` (a full run: about 150 s of CPU time) and commit the "
           "notebook")


def execute(notebook, **kwargs):
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}, **kwargs).execute()


def fresh_notebook():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # the saved outputs must not stand in for this run's
    return notebook


def pictures(cell) -> list:
    from PIL import Image
    return [Image.open(io.BytesIO(base64.b64decode(out["data"]["image/png"])))
            for out in cell.outputs if "image/png" in out.get("data", {})]


def assert_shows_what_it_says(notebook):
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) == len(PICTURES)
    assert all(cell.outputs for cell in code), "every code cell prints or draws"
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    text = ["".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream") for cell in code]
    assert any("RLS(" in out.get("data", {}).get("text/plain", "") for out in code[0].outputs)  # the model
    faces = [line for line in text[1].splitlines() if line.startswith("demo0")]
    assert [line.split(":")[0] for line in faces] == ["demo00", "demo01", "demo02", "demo03"]
    assert all("factor 8" in line and "W+ (1, 10, 256)" in line for line in faces)
    assert "RLS objective at the anchor" in text[3] and "RLS+ objective at the result" in text[3]
    assert "4 face(s), x4" in text[4]
    assert [line.split(":")[0] for line in text[4].splitlines() if line.startswith("face ")] == [
        "face 0", "face 1", "face 2", "face 3"]
    drawn = [pictures(cell) for cell in code]
    assert [len(images) for images in drawn] == PICTURES
    grid, crops = drawn[2][0], drawn[6][0]
    assert grid.width >= 4 * 128 and grid.height >= 4 * 128, f"64 px faces drawn at >= 128 px, not {grid.size}"
    assert crops.width >= 2 * 256 and crops.height >= 4 * 256, f"each face's crop >= 256 px, not {crops.size}"


def settings_fingerprint() -> str:
    from rls_lightning.api.settings import build_settings
    settings = dataclasses.asdict(build_settings("rls+"))
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


@pytest.mark.slow
def test_the_quickstart_notebook_runs_quick_by_default_and_draws_its_pictures(monkeypatch):
    monkeypatch.delenv("RLS_QUICKSTART", raising=False)  # the kernel inherits the environment: the default, quick
    notebook = fresh_notebook()
    execute(notebook)
    assert_shows_what_it_says(notebook)


def test_the_saved_outputs_are_a_full_run_with_todays_defaults():
    """Cheap: no kernel. Changing a default setting without re-running the refresh script fails here."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    record = notebook.metadata.get("rls_lightning")
    assert record, f"the notebook's outputs were not saved by scripts/refresh_quickstart.py: {REFRESH}"
    assert record["settings_fingerprint"] == settings_fingerprint(), (
        f"the saved outputs were made with other default settings ({record['date']}): {REFRESH}")
    assert record["mode"] == "full", f"the saved outputs are a {record['mode']} run, the markdown says full: {REFRESH}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "one run, top to bottom"
    assert_shows_what_it_says(notebook)


def test_an_unknown_mode_is_a_one_line_error_in_the_first_cell(monkeypatch):
    monkeypatch.setenv("RLS_QUICKSTART", "fast")
    notebook = fresh_notebook()
    notebook.cells = [next(cell for cell in notebook.cells if cell.cell_type == "code")]
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        execute(notebook)
    [error] = notebook.cells[0].outputs
    assert error.output_type == "error" and len(error.traceback) == 1
    assert "RLS_QUICKSTART='fast'" in error.traceback[0] and "quick" in error.traceback[0]
