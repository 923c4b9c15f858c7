"""What ``invert.py`` writes for each input, and the rules that keep those files from destroying anything.

Per image: ``<stem>.png`` (result), ``<stem>_rls.png`` (RLS anchor), ``<stem>.pt`` (latents, noise) and, with
K > 1 samples, ``<stem>_s<k>.png`` and ``<stem>_std.png``; per folder: ``overview.png`` and ``results.csv``.

* Two inputs may never claim the same output name (``face.png`` writes ``face_rls.png``, so an input
  ``face_rls.png`` is refused; so is ``overview.png``); names are compared without case, as on macOS and Windows.
* A file already in the output folder is only replaced or deleted if an earlier run recorded it as its own output
  of the same image (the ``files`` list of ``.progress/<stem>.json``); anything else there is the user's, and the
  image that would overwrite it is refused instead.
* A record is data, never an instruction: the folder may be shared, so anyone may have written it. Every name it
  lists must be one this naming scheme produces for its stem (a plain name, no folder, no ``..``); a record that
  lists anything else is ignored as a whole, with one note, and the image's files then count as the user's.
* ``.progress`` must be a real folder inside the output folder, not a link to somewhere else.
"""
from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..atomic import open_regular_file, read_record_text, writer_alive
from ..image_io import ImageReadError, read_image, to_uint8
from ..names import printable

if TYPE_CHECKING:
    from ..lr_images import LowResImage

FOLDER_OUTPUTS = ("overview.png", "results.csv")
PROGRESS_DIR = ".progress"
_TEMPORARY = re.compile(r"\..+\.tmp-(\d+)-[0-9a-f]{12}", re.DOTALL)  # atomic_write_path's names (any bytes)


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


def is_output_name(stem: str, name: object) -> bool:
    """Whether ``name`` is a file name that ``output_names`` produces for ``stem`` with some number of samples."""
    if not isinstance(name, str) or not name.startswith(stem):
        return False
    sample = _SAMPLE_SUFFIX.fullmatch(name[len(stem):])  # _s<k>.png exists from max(2, k + 1) samples on
    return name in output_names(stem, max(2, int(sample.group(1)) + 1) if sample else 2, with_input=True)


_SAMPLE_SUFFIX = re.compile(r"_s([0-9]{1,4})\.png")


def record_problem(record: object, stem: str) -> str | None:
    """Why ``record`` cannot be trusted as the row of ``stem`` (None if it can)."""
    if not isinstance(record, dict):
        return f"not a result row but a JSON {type(record).__name__}"
    files = record.get("files", [])
    if not isinstance(files, list):
        return f"'files' is a JSON {type(files).__name__}, not a list of names"
    wrong = next((name for name in files if not is_output_name(stem, name)), None)
    if wrong is not None:
        shown = json.dumps(wrong)[:80]
        return f"lists {shown}, which is not an output name of this image"
    return None


def read_record(out_dir: Path, stem: str, note: Callable[[str], None] | None = None) -> dict | None:
    """The row an earlier run wrote for ``stem``; None if none, unreadable, or not trustworthy (see
    ``record_problem``: then ``note`` gets one line, for the user to see why the image's files are left alone)."""
    path = out_dir / PROGRESS_DIR / f"{stem}.json"
    try:
        record = json.loads(read_record_text(path))
    except (OSError, ValueError):
        return None
    problem = record_problem(record, stem)
    if problem is not None:
        if note is not None:
            note(f"{printable(path)}: progress record ignored: {problem}")
        return None
    return record


def check_progress_folder(out_dir: Path) -> None:
    """Refuse (``OSError``) an output folder whose ``.progress`` is not a real folder: records written through a
    link would land, and stale temporaries be deleted, outside ``out_dir``."""
    folder = out_dir / PROGRESS_DIR
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        what = "a link to somewhere else" if folder.is_symlink() else "a file"
        raise OSError(errno.EEXIST, f"is {what}, not this tool's progress folder; move it away",
                      printable(folder))


def check_folder_outputs(out_dir: Path) -> None:
    """Refuse (``OSError``) to write ``FOLDER_OUTPUTS`` over files of those names that this tool did not write:
    every folder it writes them in holds its progress folder (``write_results_csv`` makes it first), so a
    ``results.csv`` or ``overview.png`` without one is somebody else's, unless that ``results.csv`` has our
    header (earlier versions made ``.progress`` only with an image's row: a run that refused every image, or a
    photo folder without a face, left summaries alone)."""
    if (out_dir / PROGRESS_DIR).is_dir() or _has_our_header(out_dir / "results.csv"):
        return
    for name in FOLDER_OUTPUTS:
        if os.path.lexists(out_dir / name):
            raise OSError(errno.EEXIST, "exists and was not written by this tool (no .progress folder beside it); "
                                        "move it or choose another --out-dir", printable(out_dir / name))


def _has_our_header(path: Path) -> bool:
    """Whether ``path`` is a regular file whose first line is a header ``write_results_csv`` writes."""
    try:
        with open_regular_file(path) as file:
            head = file.read(64)
    except OSError:
        return False
    return head.startswith((b"file,status,factor,", b"file,photo,face,"))


def recorded_outputs(record: dict | None, stem: str) -> set[str]:
    """The files an earlier run wrote for ``stem`` (rows from before ``files`` was recorded: its K's names)."""
    if record is None:
        return set()
    if "files" in record:
        return set(record["files"])
    return set(output_names(stem, int(record.get("samples") or 1))) if record.get("status") == "ok" else set()


def foreign_files(out_dir: Path, stem: str, num_samples: int, with_input: bool = False,
                  note: Callable[[str], None] | None = None) -> list[str]:
    """Outputs of ``stem`` that already exist in ``out_dir`` (a link counts, even a broken one) but were not written
    by us for this image."""
    ours = recorded_outputs(read_record(out_dir, stem, note), stem)
    return [name for name in output_names(stem, num_samples, with_input)
            if name not in ours and os.path.lexists(out_dir / name)]


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete the hidden temporary files that a killed write left behind: only ours (by their exact name pattern)
    and only those whose writing process is gone (the other ranks of a run may be writing theirs)."""
    removed = 0
    for folder in (out_dir, out_dir / PROGRESS_DIR):
        if folder.is_dir():
            for path in folder.iterdir():
                match = _TEMPORARY.fullmatch(path.name)
                if match and path.is_file() and not writer_alive(int(match.group(1))):
                    path.unlink(missing_ok=True)
                    removed += 1
    return removed


def made_from(out_dir: Path, image: "LowResImage", row: dict) -> bool:
    """Whether the progress ``row`` of ``image.stem`` was made from ``image`` (rows written before inputs were
    recorded count). A crop of a photo is named by its ``source``, whose face index is a place in the detections'
    order: two faces of about the same size can trade places when their landmarks move by rounding (with the
    CPU's thread count), so its crop saved beside the row (``<stem>_lr.png``) must also be this crop within one
    level. A row of the same crop from before crops had sources (``pixel_digest``) counts too."""
    recorded = row.get("input")
    if recorded is None:
        return True
    if image.source is None:
        return recorded == image.digest  # the pixel digest, computed once
    if recorded == image.pixel_digest:
        return True
    if recorded != image.digest:
        return False
    try:
        saved = read_image(out_dir / f"{image.stem}_lr.png", channels=image.pixels.shape[0], dtype=np.uint8).pixels
    except (ImageReadError, OSError):
        return False
    current = to_uint8(image.pixels)
    if saved.shape[:2] != current.shape[:2] or saved.size != current.size:
        return False
    return int(np.abs(saved.reshape(-1).astype(np.int16) - current.reshape(-1).astype(np.int16)).max()) <= 1
