"""What a job leaves: safe names for the uploads, the output folder's files and their zip, and the results the
page shows (``JobResult`` with an ``ImageResult`` per image and a ``PhotoResult`` per photo)."""
from __future__ import annotations

import dataclasses
import re
import zipfile
from pathlib import Path

from ..atomic import atomic_write_path

SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(name: str) -> str:
    """A file name of the upload that is safe in a folder and keeps its stem (the stem decides the seeds)."""
    name = SAFE_NAME.sub("_", Path(name).name).lstrip(".") or "upload"
    return name[-120:]


def zip_outputs(out_dir: Path, zip_path: Path) -> Path:
    """``zip_path`` holding every output file of ``out_dir`` (not its bookkeeping: ``.progress/``, ``.lock``),
    under ``<out_dir name>/``; written whole or not at all."""
    with atomic_write_path(zip_path) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in output_files(out_dir):
            archive.write(path, f"{out_dir.name}/{path.relative_to(out_dir).as_posix()}")
    return zip_path


def output_files(out_dir: Path) -> list[Path]:
    return sorted(p for p in out_dir.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(out_dir).parts))


@dataclasses.dataclass
class ImageResult:
    """What the page shows for one image (or one face of a photo); None where there is nothing."""

    stem: str
    status: str
    note: str
    lr: Path | None  # the LR input enlarged to the generator's size by pixel repetition
    bicubic: Path | None
    rls: Path | None
    final: Path | None  # <stem>.png: RLS+ (or the preset's result)
    hr: Path | None = None
    samples: list[Path] = dataclasses.field(default_factory=list)
    std: Path | None = None
    lr_l1_bicubic: float | None = None
    lr_l1_rls: float | None = None
    lr_l1_final: float | None = None


@dataclasses.dataclass
class PhotoResult:
    name: str
    enlarged: Path | None  # plain bicubic enlargement; None when too large to show or not made
    restored: Path | None  # None when it could not be written
    faces: int
    divider: float = 50.0  # where the comparison slider's divider starts, in percent of the width


def divider_position(face_spans: list[tuple[float, float]], width: float, margin: float = 0.1) -> float:
    """Where a before/after slider's divider should start, in percent of ``width``: in the middle of the stretch
    without faces (``face_spans``: each face's ``(x0, x1)``, widened by ``margin`` of its width on both sides) whose
    middle is nearest the photo's, so that it starts between faces rather than across one; the photo's middle when
    the faces leave no such stretch."""
    covered = sorted((x0 - margin * (x1 - x0), x1 + margin * (x1 - x0)) for x0, x1 in face_spans)
    gaps, start = [], 0.0
    for x0, x1 in covered:
        if min(x0, width) > start:
            gaps.append((start, min(x0, width)))
        start = max(start, x1)
    if start < width:
        gaps.append((start, width))
    if not gaps:
        return 50.0
    centre = min(((a + b) / 2 for a, b in gaps), key=lambda x: (abs(x - width / 2), x))
    return round(100 * centre / width, 2)


@dataclasses.dataclass
class JobResult:
    out_dir: Path
    zip_path: Path | None  # None when it could not be written (a message says why)
    preset: str
    refined: bool  # whether the preset runs RLS+ (else <stem>.png is the search's result)
    images: list[ImageResult]
    photos: list[PhotoResult]
    messages: list[str]  # skipped files, conversions, photos without a face
    log: list[str]
    stopped: str | None = None  # "stopped after N of M image(s) ...": Stop ended the job; these are the finished

    @property
    def summary(self) -> str:
        """The page's status line for the job's end."""
        if self.stopped is not None:
            return f"**stopped** after {self.stopped}"
        return f"**done**: {len(self.images)} image(s)" + (f" in {len(self.photos)} photo(s)" if self.photos else "")

    def consistency_rows(self) -> list[list]:
        """One row per image: name, status, mean |D(x) - y| on the [0, 1] scale for bicubic, RLS and the result."""
        def fmt(value):
            return "" if value is None else round(value, 5)
        return [[r.stem, r.status, fmt(r.lr_l1_bicubic), fmt(r.lr_l1_rls), fmt(r.lr_l1_final), r.note]
                for r in self.images]
