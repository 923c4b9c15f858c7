"""The folder door: ``super_resolve_folder`` (``RLS.super_resolve_folder``) runs one folder as ``invert.py``, the web
page and the studies all run it: the flow rule, the folder lock, the inputs of an ``--lr-dir`` (aligned LR faces)
or ``--photos`` folder, the ground-truth check before the work, the folder job, and the summaries after it
(results.csv, the restored photos, overview.png). Plain values in, a ``FolderRun`` out; each shell words the
problems itself (``report(path, reason)`` per file, the exceptions below for the run).

What runs after the optimisation only summarises results already on disk: each summary that fails is one
``warning`` line (``after_the_results``) and the others are still written, so a full disk at the end never costs
a result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import sys
from pathlib import Path
from typing import Callable

from ..checks import UsageError, check_choice, check_float, check_int
from ..errors import describe_os_error
from ..names import printable, train_flow_command
from ..photos.alignment import FRAMINGS
from ..photos.planning import DEFAULT_MEMORY_GB, DEFAULT_MIN_FACTOR
from .settings import plain_number


@dataclasses.dataclass(frozen=True)
class InputNote:
    """A usable input converted on the way in (grayscale replicated, alpha dropped...); ``str``: one log line."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.path)}: {self.reason}"


class NothingToDo(ValueError):
    """The folder gives no work: no usable LR image, or no readable photo (the message says which and why)."""


class FlowMissing(ValueError):
    """The settings read the flow prior (``InversionSettings.needs_flow``) and the model has none. ``preset``,
    ``generator`` and ``command`` (how to train one) let each shell word it; ``str`` is the API's wording."""

    def __init__(self, preset: str, generator: Path) -> None:
        self.preset, self.generator, self.command = preset, generator, train_flow_command(generator)
        super().__init__(f"preset {preset} needs a flow prior for {generator}: give flow=, or train one with: "
                         f"{self.command}")


def check_flow(settings, models) -> None:
    """``FlowMissing`` when ``settings`` need a flow prior that ``models`` lack: the flow rule, stated once for the
    API, the commands, the page and the studies."""
    if settings.needs_flow and models.flow is None:
        raise FlowMissing(settings.name, models.generator_path)


def check_photo_options(values: dict, option: Callable[[str], str]) -> None:
    """The ranges of ``PhotoOptions``' fields (``values``: field -> value), each failure one ``UsageError`` naming
    ``option(field)``: the API's field name or ``invert.py``'s option, one set of rules for both."""
    check_choice(option("framing"), values["framing"], FRAMINGS)
    check_float(option("min_face_score"), values["min_face_score"], positive=True, at_most=1.0)
    check_int(option("max_faces"), values["max_faces"], 1, allow_none=False)
    check_int(option("upscale"), values["upscale"], 1, 16, allow_none=False)
    check_int(option("min_factor"), values["min_factor"], 1, allow_none=False)
    check_float(option("memory_gb"), values["memory_gb"], positive=True)


@dataclasses.dataclass(frozen=True)
class PhotoOptions:
    """How photographs are read (``invert.py --photos``'s options of the same names); a value out of range is a
    ``ValueError`` here, before any photo is read."""

    framing: str | None = None  # None: what the generator file says
    min_face_score: float | None = None  # None: photos.detection.DEFAULT_MIN_SCORE
    max_faces: int = 16
    upscale: int = 4
    min_factor: int = DEFAULT_MIN_FACTOR
    memory_gb: float = DEFAULT_MEMORY_GB

    def __post_init__(self) -> None:
        for field in ("min_face_score", "max_faces", "upscale", "min_factor", "memory_gb"):
            object.__setattr__(self, field, plain_number(getattr(self, field)))  # numpy's numbers as Python's
        try:
            check_photo_options(dataclasses.asdict(self), lambda field: f"{field}=")
        except UsageError as err:  # "upscale= 0: ..." as the API words it: "upscale=0: ..."
            raise ValueError(str(err).replace("= ", "=", 1)) from None


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


def check_ground_truth(hr_dir: Path | None, images: list, log: Callable[[object], None] = print
                       ) -> dict[str, Path] | None:
    """Before any optimisation: the ``--hr-dir`` file of each LR image that overview.png can show (None without
    ``--hr-dir``). Each one it cannot show (see ``overview.usable_ground_truth``) is given to ``log`` (an
    ``UnusableGroundTruth``; its ``str`` is one line) and is a note in its image's row of results.csv; the image
    itself is super-resolved all the same."""
    from ..overview import usable_ground_truth

    if hr_dir is None:
        return None
    usable, unusable = usable_ground_truth(hr_dir, [image.stem for image in images])
    for image in images:
        if image.stem in unusable:
            log(unusable[image.stem])
            image.note = "; ".join(filter(None, [image.note, unusable[image.stem].note]))
    return usable


def warn_on_stderr(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr)


def after_the_results(what: str, make: Callable, warn: Callable[[str], None] = warn_on_stderr):
    """``make()``, or None with one ``warning`` line when it fails: what runs after the optimisation only
    summarises results that are already on disk, so its failure must not cost them (or the exit status)."""
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
        search = {"pulse": "PULSE", "brgm": "BRGM"}.get(job.settings.name, "RLS")
        stages = (search, "RLS+" if job.settings.refine.enabled else search)
        overview = after_the_results("overview.png", lambda: write_overview(
            [image.path for image in images], out_dir, ground_truth, stages=stages), warn)
    return csv_path, overview


@dataclasses.dataclass
class FolderRun:
    """What one folder run did: its settings and inputs, how many images it finished of how many, and where its
    summaries are (None: not written, a ``warning`` line said why)."""

    out_dir: Path
    settings: object  # inversion.settings.InversionSettings
    inputs: FolderInputs | None = None
    ground_truth: dict[str, Path] | None = None
    done: int = 0
    total: int = 0
    rows: list[dict] = dataclasses.field(default_factory=list)  # the rows of the images finished now
    csv_path: Path | None = None
    overview: Path | None = None
    job: object | None = None  # the folder job (inversion.job.InversionJob), for summaries after a stop

    @property
    def progress_note(self) -> str:
        """``N of M done; rerun to continue`` (what an interrupted run says)."""
        if self.total:
            return f"{self.done} of {self.total} done; rerun to continue"
        return "no image finished yet; rerun to start again"


def remove_if_unused(folder: Path) -> None:
    """Remove ``folder`` when its lock file is all it holds (a run that failed before writing anything, issue 20),
    unless another run holds that lock now."""
    lock = folder / ".lock"
    try:
        if [p.name for p in folder.iterdir()] != [".lock"]:
            return
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW)  # a link there is not our lock: left alone
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.unlink()
        folder.rmdir()
    except OSError:  # held by another run, or a file appeared meanwhile: leave it
        pass
    finally:
        os.close(fd)


def super_resolve_folder(model, settings, out_dir: Path, *, lr_dir: Path | None = None, photos: Path | None = None,
                         hr_dir: Path | None = None, photo_options: PhotoOptions = PhotoOptions(),
                         batch_size: int = 4, num_samples: int = 1, seed: int = 0, progress=None,
                         log: Callable[[str], None] = print, report: Callable[[object], None] | None = None,
                         warn: Callable[[str], None] = warn_on_stderr, stop=None, lock: bool = True,
                         shard: tuple[int, int] = (0, 1), writes_summary: bool = True,
                         after_solving: Callable[[], None] | None = None) -> FolderRun:
    """Super-resolve the LR faces of ``lr_dir`` or the faces of the photographs in ``photos`` into ``out_dir``
    with ``model`` (``RLS``) and ``settings``; see ``RLS.super_resolve_folder``.

    ``report(problem)``, before any optimisation: each input file that is skipped (``lr_images.Rejected``) or
    converted (``InputNote``), and each ``hr_dir`` file that cannot be shown (``overview.UnusableGroundTruth``);
    ``str(problem)`` is its log line, and the first two have ``path`` and ``reason`` (default: ``log``). ``lock``:
    hold ``out_dir``'s lock (one run per folder; a folder made here and left empty by a failure is removed again).
    ``shard=(rank, world)``: this rank's share of the images; ``writes_summary``: rank 0 writes the summaries.
    ``after_solving()`` runs when the optimisation ends, however it ends (a rank's barrier). Raises ``FlowMissing``,
    ``NothingToDo``, ``folder_lock.FolderBusy``; ``interrupts.Interrupted`` (a stop) carries ``run`` (this
    ``FolderRun``, for ``progress_note``)."""
    from ..folder_lock import FolderLock
    from ..interrupts import Interrupted

    if report is None:
        def report(problem) -> None:
            log(str(problem))
    out_dir = Path(out_dir)
    check_flow(settings, model.models)
    run = FolderRun(out_dir, settings)
    with contextlib.ExitStack() as held:
        if lock:
            if not out_dir.exists():  # made by this run: removed again if the run fails before any output
                held.callback(remove_if_unused, out_dir)
            held.enter_context(FolderLock(out_dir))
        G = model.generator
        run.inputs = inputs = read_inputs(G, lr_dir=lr_dir, photos=photos, options=photo_options, log=log)
        if shard[0] == 0:
            for item in inputs.rejected:
                report(item)
            for image in inputs.images:
                if image.note:
                    report(InputNote(image.path, image.note))
        problem = nothing_to_do(inputs, lr_dir=lr_dir, photos=photos)
        if problem is not None:
            raise NothingToDo(problem)
        if photos is None and hr_dir is not None:
            run.ground_truth = check_ground_truth(hr_dir, inputs.images, report)
        job = model.job(out_dir, settings, batch_size=batch_size, num_samples=num_samples, seed=seed,
                        progress=progress, log=log, writes_summary=writes_summary, stop=stop,
                        save_inputs=photos is not None)
        if inputs.prepared is not None:  # each face's crop carries where it came from
            job.extras = inputs.prepared.extras
        run.job = job
        try:
            run.rows = job.run(inputs.images, inputs.rejected, shard=shard)
        except Interrupted as err:
            err.run = run
            raise
        finally:
            run.done, run.total = job.done, job.total
            if after_solving is not None:  # a failing rank must not leave the others waiting forever
                after_solving()
        if writes_summary:
            run.csv_path, run.overview = write_summary(job, inputs, out_dir, hr_dir=hr_dir,
                                                       ground_truth=run.ground_truth, warn=warn)
    return run
