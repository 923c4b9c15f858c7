"""What ``invert.py`` writes for each input, and the rules that keep those files from destroying anything.

Per image: ``<stem>.png`` (result), ``<stem>_rls.png`` (RLS anchor), ``<stem>.pt`` (latents, noise) and, with
K > 1 samples, ``<stem>_s<k>.png`` and ``<stem>_std.png``; per folder: ``overview.png`` and ``results.csv``.

* Two inputs may never claim the same output name (``face.png`` writes ``face_rls.png``, so an input
  ``face_rls.png`` is refused; so is ``overview.png``); names are compared without case, as on macOS and Windows.
* A file already in the output folder is only replaced or deleted if an earlier run recorded it as its own output
  of the same image (the ``files`` list of ``.progress/<stem>.json``); anything else there is the user's, and the
  image that would overwrite it is refused instead.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

FOLDER_OUTPUTS = ("overview.png", "results.csv")
PROGRESS_DIR = ".progress"
_TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{12}$")  # atomic_write_path's names


def output_names(stem: str, num_samples: int = 1, with_input: bool = False) -> list[str]:
    """Every file written for input ``stem`` with ``num_samples`` results (and ``<stem>_lr.png``, a copy of the
    input, for inputs made by the command itself such as the face crops of a photo)."""
    names = [f"{stem}.png", f"{stem}_rls.png", f"{stem}.pt"] + ([f"{stem}_lr.png"] if with_input else [])
    if num_samples > 1:
        names += [f"{stem}_s{k}.png" for k in range(num_samples)] + [f"{stem}_std.png"]
    return names


def claim_output_names(stems: list[str], num_samples: int, with_input: bool = False) -> dict[str, str]:
    """``{stem: reason}`` for the stems that must be refused because their outputs would collide with the folder's
    own files or with the outputs of another stem; shorter stems claim their names first, so that ``face`` keeps
    its anchor ``face_rls.png`` and the input ``face_rls.png`` is the one refused."""
    owner: dict[str, str] = {name.lower(): "" for name in FOLDER_OUTPUTS}
    refused: dict[str, str] = {}
    for stem in sorted(stems, key=lambda s: (len(s), s)):
        names = output_names(stem, num_samples, with_input)
        clash = next((name for name in names if name.lower() in owner), None)
        if clash is not None:
            other = owner[clash.lower()]
            refused[stem] = (f"its output {clash} would overwrite "
                             + (f"an output of {other}" if other else "the folder's summary file")
                             + "; rename the input")
            continue
        for name in names:
            owner[name.lower()] = stem
    return refused


def read_record(out_dir: Path, stem: str) -> dict | None:
    """The row an earlier run wrote for ``stem`` (None if none, or unreadable)."""
    try:
        return json.loads((out_dir / PROGRESS_DIR / f"{stem}.json").read_text())
    except (OSError, ValueError):
        return None


def recorded_outputs(record: dict | None, stem: str) -> set[str]:
    """The files an earlier run wrote for ``stem`` (rows from before ``files`` was recorded: its K's names)."""
    if record is None:
        return set()
    if "files" in record:
        return set(record["files"])
    return set(output_names(stem, int(record.get("samples") or 1))) if record.get("status") == "ok" else set()


def foreign_files(out_dir: Path, stem: str, num_samples: int, with_input: bool = False) -> list[str]:
    """Outputs of ``stem`` that already exist in ``out_dir`` but were not written by us for this image."""
    ours = recorded_outputs(read_record(out_dir, stem), stem)
    return [name for name in output_names(stem, num_samples, with_input)
            if name not in ours and (out_dir / name).exists()]


def foreign_folder_outputs(out_dir: Path) -> list[str]:
    """``overview.png`` / ``results.csv`` present in a folder that no run of ours has written to."""
    if (out_dir / PROGRESS_DIR).is_dir():
        return []
    return [name for name in FOLDER_OUTPUTS if (out_dir / name).exists()]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete the hidden temporary files that a killed write left behind: only ours (by their exact name pattern)
    and only those whose writing process is gone (the other ranks of a run may be writing theirs)."""
    removed = 0
    for folder in (out_dir, out_dir / PROGRESS_DIR):
        if folder.is_dir():
            for path in folder.iterdir():
                match = _TEMPORARY.match(path.name)
                if match and path.is_file() and not _process_alive(int(match.group(1))):
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed
