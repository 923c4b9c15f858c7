"""A run over a folder, as ``invert.py`` and the web page make it: the inputs of an ``--lr-dir`` (aligned LR
faces) or ``--photos`` folder, the ground-truth check before the work, and the summaries after it (results.csv,
the restored photos, overview.png). Plain values in, no argparse; the job itself is ``RLS.job``.

What runs after the optimisation only summarises results already on disk: each summary that fails is one
``warning`` line (``after_the_results``) and the others are still written, so a full disk at the end never costs
a result.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable

from ..photos.planning import DEFAULT_MEMORY_GB, DEFAULT_MIN_FACTOR


@dataclasses.dataclass(frozen=True)
class PhotoOptions:
    """How photographs are read (``invert.py --photos``'s options of the same names)."""

    framing: str | None = None  # None: what the generator file says
    min_face_score: float | None = None  # None: photos.detection.DEFAULT_MIN_SCORE
    max_faces: int = 16
    upscale: int = 4
    min_factor: int = DEFAULT_MIN_FACTOR
    memory_gb: float = DEFAULT_MEMORY_GB


@dataclasses.dataclass
class FolderInputs:
    images: list  # lr_images.LowResImage: the LR files, or the aligned face crops of the photos
    rejected: list  # lr_images.Rejected: the files that cannot be used, with why
    prepared: object | None = None  # photos.restoration.PreparedPhotos for photos: where each face came from


def read_inputs(generator, *, lr_dir: Path | None = None, photos: Path | None = None,
                options: PhotoOptions = PhotoOptions(), log: Callable[[str], None] = print) -> FolderInputs:
    """The LR images of ``lr_dir``, or the aligned face crops of the photographs in ``photos`` (one of the two)."""
    if photos is not None:
        from ..photos.detection import DEFAULT_MIN_SCORE
        from ..photos.restoration import prepare_photos

        prepared = prepare_photos(photos, generator.img_resolution, options.framing or generator.config.framing,
                                  min_score=options.min_face_score or DEFAULT_MIN_SCORE, max_faces=options.max_faces,
                                  upscale=options.upscale, min_factor=options.min_factor,
                                  memory_gb=options.memory_gb, log=log)
        return FolderInputs(prepared.faces, prepared.rejected, prepared)
    from ..lr_images import scan_directory

    images, rejected = scan_directory(lr_dir, generator.img_resolution, generator.img_channels)
    return FolderInputs(images, rejected)


def nothing_to_do(inputs: FolderInputs, *, lr_dir: Path | None = None, photos: Path | None = None,
                  see: str = "see the lines above") -> str | None:
    """One line when the folder gives no work: no usable LR image, or no readable photo; else None."""
    skipped = f"{len(inputs.rejected)} file(s) skipped" + (f", {see}" if inputs.rejected else "")
    if photos is None and not inputs.images:
        return f"--lr-dir {lr_dir}: no usable image ({skipped})"
    if photos is not None and not inputs.prepared.photos:
        return f"--photos {photos}: no readable photo ({skipped})"
    return None


def check_ground_truth(hr_dir: Path | None, images: list, log: Callable[[str], None] = print
                       ) -> dict[str, Path] | None:
    """Before any optimisation: the ``--hr-dir`` file of each LR image that overview.png can show (None without
    ``--hr-dir``). Each one it cannot show (see ``overview.usable_ground_truth``) is one line in the log and a note
    in its image's row of results.csv; the image itself is super-resolved all the same."""
    from ..overview import usable_ground_truth

    if hr_dir is None:
        return None
    usable, unusable = usable_ground_truth(hr_dir, [image.stem for image in images])
    for image in images:
        if image.stem in unusable:
            log(str(unusable[image.stem]))
            image.note = "; ".join(filter(None, [image.note, unusable[image.stem].note]))
    return usable


def warn_on_stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def after_the_results(what: str, make: Callable, warn: Callable[[str], None] = warn_on_stderr):
    """``make()``, or None with one ``warning`` line when it fails: what runs after the optimisation only
    summarises results that are already on disk, so its failure must not cost them (or the exit status)."""
    from ..cli.errors import describe_os_error
    from ..fingerprint import first_line
    from ..interrupts import Interrupted

    try:
        return make()
    except Interrupted:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of a summary; its type is said for a bug report
        reason = describe_os_error(err) if isinstance(err, OSError) else f"{type(err).__name__}: {first_line(err)}"
        warn(f"{what} not written ({reason}); every finished result is kept")
        return None


def write_summary(job, inputs: FolderInputs, out_dir: Path, *, hr_dir: Path | None = None,
                  ground_truth: dict[str, Path] | None = None,
                  warn: Callable[[str], None] = warn_on_stderr) -> tuple[Path | None, Path | None]:
    """After the job: ``results.csv``, the restored photos (photos) and ``overview.png`` (``ground_truth``: from
    ``check_ground_truth``; checked here when not given). Each that fails is None with one ``warning`` line, and
    the others are still written."""
    from ..overview import write_overview, write_photo_overview

    prepared, images, rejected = inputs.prepared, inputs.images, inputs.rejected
    if prepared is not None:
        import warnings

        from PIL import Image

        from ..photos.report import write_photo_results
        from ..photos.restoration import restore_photos

        csv_path = after_the_results("results.csv", lambda: write_photo_results(prepared, out_dir, rejected), warn)
        restored = after_the_results("the restored photos", lambda: restore_photos(prepared, out_dir, log=warn),
                                     warn)
        shown = [p for p in prepared.photos if out_dir / f"{p.stem}_restored.png" in (restored or [])]
        with warnings.catch_warnings():  # photos up to 12000 px (checked), past Pillow's bomb warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            overview = after_the_results("overview.png", lambda: write_photo_overview(shown, restored, out_dir),
                                         warn) if restored is not None else None
    else:
        csv_path = after_the_results("results.csv", lambda: job.write_results_csv(rejected), warn)
        if hr_dir is None:
            ground_truth = None  # no ground-truth column, whatever was passed
        elif ground_truth is None:
            ground_truth = after_the_results("the ground-truth column", lambda: check_ground_truth(
                hr_dir, images, warn), warn)
        overview = after_the_results("overview.png", lambda: write_overview(
            [image.path for image in images], out_dir, ground_truth), warn)
    return csv_path, overview
