"""The web page's job runner, free of gradio: uploaded files and settings in, ``invert.py``'s outputs out.

A job copies the uploaded files into a fresh folder of its own (``<work root>/job-<n>-<token>/faces`` or
``.../photos``), makes a ``JobPlan`` of the request (the settings from the Python API's ``build_settings``, which
checks every value, with ``invert.py``'s defaults for what the page does not set), then runs it through the door
``invert.py`` uses (``RLS.super_resolve_folder``) on the models loaded once at start. So the output folder
(``faces_<preset>`` beside the inputs) holds exactly what ``python invert.py --lr-dir faces`` (or ``--photos
photos``) writes with the same settings and seed; ``<out folder>.zip`` holds all of it. What the page shows but
``invert.py`` does not write (the LR input enlarged, the bicubic enlargement, HR images) goes to ``display/``,
outside the output folder.

While the job runs, ``RunningJob.updates()`` yields ``StepUpdate`` s (stage, step, loss per image, the current
estimate every ``preview_every`` steps), then the ``JobResult``; a user's mistake ends in a ``JobFailed`` with one
line for the page, never a traceback. ``RunningJob.cancel()`` (a closed tab, the Stop button) stops the job after
its current optimiser step, as SIGINT does for ``invert.py``; a job whose updates nobody reads for
``abandon_after`` seconds cancels itself. Progress and stopping are in ``progress``, the controls' preset values in
``controls``, output files and results in ``outputs``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import queue
import re
import secrets
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from ..api import folders
from ..api.folders import after_the_results as _after_the_results
from ..api.loading import LoadedModels
from ..api.settings import PRESETS
from ..atomic import read_record_text
from ..checks import UsageError, check_int
from ..errors import describe_os_error
from ..fingerprint import first_line
from ..interrupts import Interrupted, StopRequests
from ..paths import DEMO_GENERATOR
from .controls import CONTROLS, preset_values
from .outputs import ImageResult, JobResult, PhotoResult, divider_position, safe_name, zip_outputs
from .progress import PREVIEW_EVERY, Cancellation, JobProgress, StepUpdate
from .workspace import PRIVATE_FILE, Identity, Workspace, private_copy, private_folder, remove_own_folder

log = logging.getLogger(__name__)

MODES = ("lr", "photos")  # aligned LR face crops (invert.py --lr-dir) or photographs (--photos)
INPUT_FOLDERS = {"lr": "faces", "photos": "photos"}
KEEP_JOBS = 8  # job folders kept in the work root; older ones are deleted when a new job starts
# in each job folder a runner makes, holding that runner's token: it tells a person whose the folder is, and one
# whose marker was overwritten is left alone; it proves nothing by itself (a copy carries it), the identity does
JOB_MARKER = ".rls-job"
DISPLAY_MAX_SIDE = 4096  # a restored photo larger than this is not shown on the page (it is in the zip)
ABANDON_AFTER = 60.0  # seconds without anyone reading a job's updates before it cancels itself


# ---------------------------------------------------------------------------------------------------- models

Models = LoadedModels  # the generator and flow every job uses (loaded once, as invert.py loads them for a run)


def load_models(generator: str | Path = DEMO_GENERATOR, flow: str | Path | None = None,
                force: bool = False) -> Models:
    """``--generator`` (a path or a registry name) and ``--flow`` (default: the flow found for the generator, as
    for ``invert.py``: ``api.loading.flow_for``), with ``invert.py``'s defaults for the inference options."""
    from ..api.loading import load_models as load
    from ..weights import resolve_generator

    path = resolve_generator(generator)
    if not Path(path).is_file():
        raise UsageError(f"--generator {generator}: no such file")
    if flow is not None and not Path(flow).is_file():
        raise UsageError(f"--flow {flow}: no such file")
    return load(path, flow, force=force)


# ---------------------------------------------------------------------------------------------------- requests

@dataclasses.dataclass
class JobRequest:
    """One run of the page: the uploaded files and the values of its controls (None: the preset's value)."""

    files: list[Path]
    mode: str = "lr"
    hr_files: list[Path] = dataclasses.field(default_factory=list)
    preset: str = "rls+"
    steps: int | None = None
    refine_steps: int | None = None
    radius_scale: float | None = None
    lambda_w: float | None = None
    lambda_g: float | None = None
    lambda_c: float | None = None
    num_samples: int = 1
    seed: int = 0
    upscale: int = 4
    batch_size: int = 4

    def overrides(self) -> dict[str, float | int | None]:
        """The method controls that differ from the preset (the others stay None, as if not given to invert.py)."""
        defaults = preset_values(self.preset) if self.preset in PRESETS else {}
        out = {}
        for name in ("steps", "refine_steps", "radius_scale", "lambda_w", "lambda_g", "lambda_c"):
            value = getattr(self, name)
            out[name] = None if value is None or defaults.get(name) == value else value
        return out


@dataclasses.dataclass
class JobPlan:
    """What a request becomes before any work: its folders and the method's settings."""

    mode: str
    input_dir: Path
    hr_dir: Path | None
    out_dir: Path
    settings: object  # inversion.settings.InversionSettings
    photo_options: folders.PhotoOptions

    @property
    def lr_dir(self) -> Path | None:
        return self.input_dir if self.mode == "lr" else None

    @property
    def photos(self) -> Path | None:
        return self.input_dir if self.mode == "photos" else None


class JobFailed(Exception):
    """A job that could not run or finish; the message is one line for the page."""


class JobCancelled(JobFailed):
    pass


# ---------------------------------------------------------------------------------------------------- runner

def _save_rgb(array: np.ndarray, path: Path) -> Path:
    Image.fromarray(array).save(path)
    return path


class Runner:
    """Runs one job at a time over the models loaded at start, each in a fresh folder under ``work_root``."""

    def __init__(self, models: Models, work_root: Path, *, accelerator: str = "auto", precision: str = "32-true",
                 keep_jobs: int = KEEP_JOBS, preview_every: int = PREVIEW_EVERY,
                 abandon_after: float = ABANDON_AFTER, workspace: Workspace | None = None) -> None:
        """``workspace``: the server's, whose upload budget counts what jobs take and frees what pruning removes
        (without one, uploads are plain copies and nothing is counted)."""
        self.models = models
        self.work_root = Path(work_root)
        self.workspace = workspace
        self.accelerator, self.precision = accelerator, precision
        self.keep_jobs, self.preview_every, self.abandon_after = keep_jobs, preview_every, abandon_after
        self._busy = threading.Lock()
        self._count = itertools.count(1)
        self._token = secrets.token_hex(16)  # only in memory: no folder made by anyone else can carry it
        self.job_folders: list[Path] = []  # the job folders this runner made and still keeps, oldest first
        # each kept folder as it was when this runner last wrote in it: in memory, where no user's copy reaches
        self._made: dict[Path, Identity] = {}
        self.running: "RunningJob | None" = None

    # ------------------------------------------------------------------ folders

    def made_here(self, folder: Path) -> bool:
        """Whether ``folder`` is a job folder this runner made and still keeps: the very folder (device, inode and
        change time, not a link) it recorded when it last wrote in it, in the work root, its ``JOB_MARKER`` still
        holding this runner's token. A folder made again at the same path, or a copy, fails the first test
        whatever it holds; one the user has written in since fails it too."""
        marker = folder / JOB_MARKER
        recorded = self._made.get(folder)
        try:
            if folder.parent != self.work_root or recorded is None or Identity.at(folder) != recorded \
                    or marker.is_symlink():
                return False
            with open(marker, "rb") as held:  # a few bytes: whatever replaced the marker may be large
                return held.read(len(self._token) + 1) == self._token.encode()
        except OSError:
            return False

    def _prune(self, in_use: list[Path]) -> None:
        """Delete this runner's oldest job folders, keeping ``keep_jobs - 1`` (a new one is about to be made), and
        with each the uploads it took that no kept job nor ``in_use`` (the new job's files) needs. Only folders it
        made are candidates, and each is checked again before it goes, then deleted through the folder it
        recorded (``remove_own_folder``): a user's ``job-*`` folders in ``--work-dir``, or a folder put where a
        job folder was, are never touched."""
        while self.job_folders and len(self.job_folders) >= self.keep_jobs:
            old = self.job_folders.pop(0)
            recorded = self._made.get(old)
            try:
                removed = recorded is not None and self.made_here(old) and remove_own_folder(old, recorded)
                if not removed:
                    log.warning("%s: not deleted, it is no longer the job folder this page made", old)
            except OSError as err:  # something in it could not be removed: the new job runs all the same
                log.warning("%s: not entirely deleted (%s)", old, describe_os_error(err))
            self._made.pop(old, None)
            if self.workspace is not None:
                self.workspace.forget_job(old, keep=in_use)

    def _remember(self, folder: Path) -> None:
        """Record ``folder`` as it is now, after this runner wrote in it (which changes its change time), unless
        it is no longer the folder recorded before."""
        now = Identity.at(folder)
        if now is not None and self._made.get(folder, now).same_entry(now):
            self._made[folder] = now

    def _new_job_dir(self, in_use: list[Path]) -> Path:
        if not self.work_root.exists():
            private_folder(self.work_root)
        self._prune(in_use)
        folder = self.work_root / f"job-{time.strftime('%Y%m%d-%H%M%S')}-{next(self._count):03d}-{secrets.token_hex(3)}"
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)
        marker = os.open(folder / JOB_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(marker, "w") as out:
            out.write(self._token)
        self._remember(folder)
        self.job_folders.append(folder)
        return folder

    def _copy_uploads(self, files: list[Path], folder: Path) -> list[str]:
        private_folder(folder)
        names = []
        for file in files:
            name = safe_name(Path(file).name)
            stem, suffix = Path(name).stem, Path(name).suffix
            for k in itertools.count(2):
                if not (folder / name).exists():
                    break
                name = f"{stem}_{k}{suffix}"
            if self.workspace is not None:
                self.workspace.take(Path(file), folder / name, folder.parent)
            else:
                private_copy(Path(file), folder / name)
            names.append(name)
        return names

    # ------------------------------------------------------------------ the job

    def plan(self, request: JobRequest, job_dir: Path) -> JobPlan:
        """The uploads copied into ``job_dir`` and the request checked as ``invert.py`` checks its options (the
        settings by the API's ``build_settings``); ``JobFailed`` with one line for the page otherwise."""
        from ..api.settings import SettingsError, build_settings
        from ..api.model import default_out_dir

        if request.mode not in MODES:
            raise JobFailed(f"unknown input kind {request.mode!r}")
        if not request.files:
            raise JobFailed("upload one or more images first")
        values = {name: getattr(request, name) for name in ("num_samples", "seed", "upscale", "batch_size")}
        overrides = request.overrides()
        for group in (values, overrides):
            for name, value in group.items():
                if isinstance(value, float) and name in INTEGERS:
                    if refusal := not_whole(_LABELS.get(name, name), value):
                        raise JobFailed(refusal)
                    group[name] = int(value)
        try:
            check_int(_LABELS["num_samples"], values["num_samples"], 1)
            check_int("upscale", values["upscale"], 1, 16)
            check_int("batch size", values["batch_size"], 1)
            check_int(_LABELS["seed"], values["seed"], 0)
            settings = build_settings(request.preset, **overrides)
        except SettingsError as err:
            raise JobFailed(_page_message(_labelled(err), job_dir)) from None
        except UsageError as err:
            raise JobFailed(_page_message(str(err), job_dir)) from None
        input_dir = job_dir / INPUT_FOLDERS[request.mode]
        self._copy_uploads(request.files, input_dir)
        hr_dir = None
        if request.hr_files and request.mode == "lr":  # a photo's faces have no ground truth of their own
            hr_dir = job_dir / "hr"
            self._copy_uploads(request.hr_files, hr_dir)
        request.num_samples, request.seed, request.upscale, request.batch_size = (
            values["num_samples"], values["seed"], values["upscale"], values["batch_size"])
        return JobPlan(request.mode, input_dir, hr_dir, default_out_dir(input_dir, request.preset), settings,
                       folders.PhotoOptions(upscale=values["upscale"]))

    def run(self, request: JobRequest, emit: Callable[[StepUpdate], None] = lambda update: None,
            stop: StopRequests | None = None, on_each_step: Callable[[], None] | None = None) -> JobResult:
        """Run ``request`` to the end (in the calling thread); ``JobFailed`` with one line when it cannot."""
        if not self._busy.acquire(blocking=False):
            raise JobFailed("another job is running; wait for it to finish")
        try:
            return self._run(request, emit, stop, on_each_step)
        finally:
            self._busy.release()

    def _run(self, request, emit, stop, on_each_step) -> JobResult:
        from ..api import FlowMissing, NothingToDo
        from ..api.model import RLS
        from ..flow.checkpoint import FlowCheckpointError
        from ..image_io import ImageReadError
        from ..runtime import resolve_accelerator
        from ..stylegan.checkpoint_errors import CheckpointError

        lines: list[str] = []
        messages: list[str] = []
        job_dir: Path | None = None

        def note(line: str) -> None:
            lines.append(str(line))
            log.info("%s", line)

        def say(line: str) -> None:
            messages.append(_page_message(str(line), job_dir))

        def report(problem) -> None:  # a skipped or converted upload by its name; an HR file as the log says it
            say(f"{problem.path.name}: {problem.reason}" if hasattr(problem, "path") else str(problem))

        stop = stop if stop is not None else Cancellation()
        accelerator = resolve_accelerator(self.accelerator)
        try:
            job_dir = self._new_job_dir([*request.files, *request.hr_files])
            plan = self.plan(request, job_dir)
            settings, out_dir = plan.settings, plan.out_dir
            if request.mode == "photos":
                from ..lr_images import IMAGE_SUFFIXES

                for path in sorted(plan.photos.iterdir()):
                    if path.suffix.lower() not in IMAGE_SUFFIXES:
                        say(f"{path.name}: skipped, not an image file")
            model = RLS(self.models, device="cuda" if accelerator == "gpu" else accelerator,
                        precision=self.precision)
            try:
                run = model.super_resolve_folder(
                    plan.lr_dir, photos=plan.photos, out_dir=out_dir, hr_dir=plan.hr_dir, settings=settings,
                    seed=request.seed, num_samples=request.num_samples, batch_size=request.batch_size,
                    photo_options=plan.photo_options, progress=JobProgress(emit, self.preview_every, on_each_step),
                    log=note, report=report, warn=say, stop=stop)
            except NothingToDo:
                what = "image" if request.mode == "lr" else "photo"
                raise JobFailed(f"no usable {what}: " + ("; ".join(messages) or "nothing uploaded")) from None
            except torch.OutOfMemoryError:
                raise JobFailed(f"out of {accelerator.upper()} memory: upload fewer images or use fewer "
                                "samples") from None
            images, prepared, ground_truth = run.inputs.images, run.inputs.prepared, run.ground_truth or {}
            zip_path = _after_the_results(f"{out_dir.name}.zip",
                                          lambda: zip_outputs(out_dir, job_dir / f"{out_dir.name}.zip"), say)
            return self._result(request, settings, images, prepared, ground_truth, out_dir, zip_path,
                                job_dir / "display", messages, lines, say)
        except Interrupted as err:
            run = getattr(err, "run", None)
            if run is None or not run.done:
                raise JobCancelled("cancelled before any image was finished") from None
            # Stop keeps what is finished: its summaries, its zip and its pictures, as a finished job shows them
            folders.write_summary(run.job, run.inputs, run.out_dir, hr_dir=plan.hr_dir,
                                  ground_truth=run.ground_truth, warn=say)
            zip_path = _after_the_results(f"{run.out_dir.name}.zip", lambda: zip_outputs(
                run.out_dir, job_dir / f"{run.out_dir.name}.zip"), say)
            finished = [image for image in run.inputs.images if _read_row(run.out_dir, image.stem).get("status")]
            result = self._result(request, settings, finished, run.inputs.prepared, run.ground_truth or {},
                                  run.out_dir, zip_path, job_dir / "display", messages, lines, say)
            result.stopped = f"{run.done} of {run.total} image(s); the finished results are kept"
            return result
        except FlowMissing as err:
            raise JobFailed(f"preset {err.preset} needs a flow prior for this generator; train one with: "
                            f"{err.command}") from None
        except (UsageError, CheckpointError, FlowCheckpointError, ImageReadError) as err:
            raise JobFailed(_page_message(str(err), job_dir)) from None
        except MemoryError:  # numpy's and torch's CPU allocations; the server stays up
            raise JobFailed("out of memory: upload a smaller photo or fewer images, or choose a lower upscale") \
                from None
        except OSError as err:
            raise JobFailed(_page_message(describe_os_error(err), job_dir)) from None
        finally:  # the job wrote in its folder (inputs, outputs, zip): as it is now is how this runner left it
            if job_dir is not None:
                self._remember(job_dir)

    # ------------------------------------------------------------------ what the page shows

    def _result(self, request: JobRequest, settings, images, prepared, ground_truth: dict[str, Path], out_dir: Path,
                zip_path: Path | None, display: Path, messages: list[str], lines: list[str],
                say: Callable[[str], None]) -> JobResult:
        """What the page shows of a finished job. Made after the results are on disk, so a failure here costs
        one message and the pictures it was making, never a result."""
        private_folder(display)
        results = [self._image_result(request, image, ground_truth.get(image.stem), out_dir, display, say)
                   for image in sorted(images, key=lambda i: i.stem)]
        photos = []
        if prepared is not None:
            for path in prepared.photos:
                faces = [face for face in prepared.where.values() if face.photo == path]
                photo = PhotoResult(path.name, None, _existing(out_dir / f"{path.stem}_restored.png"), len(faces))
                if photo.restored is not None:
                    photo.enlarged = _after_the_results(f"{path.name}'s enlargement", lambda: _enlarged_photo(
                        path, photo.restored, display, say), say)
                    photo.divider = _slider_divider(path, faces)
                photos.append(photo)
        return JobResult(out_dir, zip_path, settings.name, settings.refine.enabled, results, photos, messages, lines)

    def _image_result(self, request: JobRequest, image, hr_file: Path | None, out_dir: Path, display: Path,
                      say: Callable[[str], None]) -> ImageResult:
        from ..degradations import downsample_bicubic, resize_bicubic
        from ..image_io import read_image, to_uint8
        from ..overview import HR_MAX_SIDE

        stem, size = image.stem, self.models.resolution
        row = _read_row(out_dir, stem)
        result = ImageResult(
            stem=stem, status=row.get("status", "missing"), note=_page_message(row.get("note", ""), None),
            lr=None, bicubic=None, rls=_existing(out_dir / f"{stem}_rls.png"), final=_existing(out_dir / f"{stem}.png"),
            samples=[p for k in range(request.num_samples) if (p := out_dir / f"{stem}_s{k}.png").is_file()],
            std=_existing(out_dir / f"{stem}_std.png"),
            lr_l1_rls=_float(row.get("lr_l1_rls")), lr_l1_final=_float(row.get("lr_l1_final")))

        def draw() -> None:
            lr_u8 = to_uint8(image.pixels)
            lr_big = np.asarray(Image.fromarray(lr_u8).resize((size, size), Image.NEAREST))
            bicubic = resize_bicubic(image.pixels[None].float(), size).clamp(-1, 1)
            result.lr_l1_bicubic = float(0.5 * (downsample_bicubic(bicubic, image.factor)
                                                - image.pixels[None]).abs().mean())
            result.lr = _save_rgb(lr_big, display / f"{stem}_lr_x{image.factor}.png")
            result.bicubic = _save_rgb(to_uint8(bicubic[0]), display / f"{stem}_bicubic.png")
            if hr_file is not None:
                hr = Image.fromarray(np.round(read_image(hr_file, channels=3, max_side=HR_MAX_SIDE).pixels * 255)
                                     .astype(np.uint8))
                if hr.size != (size, size):
                    hr = hr.resize((size, size), Image.BICUBIC)
                result.hr = _save_rgb(np.asarray(hr), display / f"{stem}_hr.png")

        _after_the_results(f"the comparison images of {stem}", draw, say)
        return result

    # ------------------------------------------------------------------ in the background

    def start(self, request: JobRequest, owner: str | None = None) -> "RunningJob":
        """Run ``request`` in a thread for the browser session ``owner``; read its updates with
        ``RunningJob.updates()``."""
        self.running = RunningJob(self, request, owner)
        return self.running

    def cancel_for(self, owner: str | None) -> bool:
        """Stop pressed in the browser session ``owner``: cancel the running job only if it is that session's
        (another visitor's Stop must not end it); whether one was cancelled."""
        job = self.running
        if job is None or job.finished or job.owner is None or job.owner != owner:
            return False
        job.cancel()
        return True

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel the running job, if any, and wait up to ``timeout`` seconds for it to end (before the server's
        folders are removed under it)."""
        if self.running is not None and not self.running.finished:
            self.running.cancel()
            self.running.join(timeout)


class RunningJob:
    """A job in its own thread; ``updates()`` yields its ``StepUpdate`` s, then its ``JobResult`` or ``JobFailed``."""

    def __init__(self, runner: Runner, request: JobRequest, owner: str | None = None) -> None:
        self.runner, self.owner = runner, owner
        self.stop = Cancellation()
        self.events: queue.Queue = queue.Queue()
        self.last_read = time.monotonic()
        self.outcome: JobResult | JobFailed | None = None
        self.thread = threading.Thread(target=self._work, args=(request,), name="rls-app-job", daemon=True)
        self.thread.start()

    def _check_reader(self) -> None:
        if time.monotonic() - self.last_read > self.runner.abandon_after:
            log.warning("nobody reads the job's progress any more: cancelling it")
            self.stop.cancel()

    def _work(self, request: JobRequest) -> None:
        try:
            outcome = self.runner.run(request, self.events.put, self.stop, self._check_reader)
        except JobFailed as err:
            outcome = err
        except Exception as err:  # a bug: the page gets one line, the server log the traceback
            log.exception("job failed")
            outcome = JobFailed(_page_message(f"internal error ({type(err).__name__}: {first_line(err)}); see the "
                                              "server's log", None))
        self.outcome = outcome
        log.info("job ended: %s", outcome.summary.replace("**", "") if isinstance(outcome, JobResult)
                 else f"{'cancelled' if isinstance(outcome, JobCancelled) else 'failed'} ({outcome})")
        self.events.put(outcome)

    def cancel(self) -> None:
        self.stop.cancel()

    @property
    def finished(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def updates(self, poll: float = 0.5) -> Iterator[StepUpdate | JobResult | JobFailed | None]:
        """Every update as it comes, None after ``poll`` seconds without one (a chance to notice a closed page),
        and last the outcome."""
        while True:
            self.last_read = time.monotonic()
            try:
                event = self.events.get(timeout=poll)
            except queue.Empty:
                yield None
                continue
            yield event
            if isinstance(event, (JobResult, JobFailed)):
                return


# an absolute POSIX path: a "/" not inside a word, a relative path or a URL ("1/2", "a/b", "http://...")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"]+")


INTEGERS = {"num_samples", "seed", "upscale", "batch_size", "steps", "refine_steps"}
_LABELS = {control.name: control.label for control in CONTROLS}


def not_whole(label: str, value: float) -> str | None:
    """The line refusing a fraction where a whole number belongs (as invert.py refuses --steps 1.5), or None."""
    return None if float(value).is_integer() else f"{label} {value:g}: must be a whole number"


def _labelled(err) -> str:
    """The API's ``SettingsError`` worded with the page's control: ``RLS steps 0: must be ...``."""
    return f"{_LABELS.get(err.setting, err.setting)} {err.value}: {err.reason}"


def _page_message(message: str, job_dir: Path | None) -> str:
    """An ``invert.py`` message with the page's words: the page has no options, the job folder is not the user's,
    and no server path is shown: files of the job are named from the job folder, any other path by its name."""
    message = re.sub(r"--(lr-dir|photos|hr-dir|out-dir) \S+: ", "", message)
    message = message.replace(" (--photo-memory); reduce the photo or raise the limit",
                              " on this server; upload a smaller photo")
    if job_dir is not None:
        for folder in {str(job_dir), os.path.realpath(job_dir)}:
            message = message.replace(folder + os.sep, "").replace(folder, "the job folder")
    message = _ABSOLUTE_PATH.sub(lambda match: Path(match.group()).name or "a server folder", message)
    return message.replace("--refine-steps", "RLS+ steps").replace("--steps", "RLS steps")


def _enlarged_photo(photo: Path, restored: Path, display: Path, say: Callable[[str], None]) -> Path | None:
    """``photo`` enlarged to the size of ``restored`` with the bicubic filter the restoration starts from (so the
    slider differs only at the faces); None, with a message, when ``restored`` is beyond ``DISPLAY_MAX_SIDE``."""
    from ..image_io import open_image, read_image
    from ..api.photos import enlarge

    with warnings.catch_warnings():  # only the header is read: its size decides whether to decode at all
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with open_image(restored) as header:
                size = header.size
        except Image.DecompressionBombError:
            size = None
    if size is None or max(size) > DISPLAY_MAX_SIDE:
        say(f"{photo.name}: the restored photo is too large to show here" + (f" ({size[0]}x{size[1]} px)" if size
            else "") + "; it is in the zip")
        return None
    pixels = read_image(photo, channels=3).pixels
    enlarged = enlarge(pixels, max(1, round(size[0] / pixels.shape[1])))
    return _save_rgb((enlarged * 255).round().astype(np.uint8), display / f"{photo.stem}_bicubic.png")


def _slider_divider(photo: Path, faces: list) -> float:
    """The photo slider's starting divider, in percent: off the faces found in ``photo`` (``divider_position``)."""
    from ..image_io import open_image

    with warnings.catch_warnings():  # the photo passed the job's size checks; only its header is read here
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with open_image(photo) as header:
                width = header.width
        except (OSError, Image.DecompressionBombError):
            return 50.0
    return divider_position([(float(face.box[0]), float(face.box[2])) for face in faces], width)


def _read_row(out_dir: Path, stem: str) -> dict:
    try:
        row = json.loads(read_record_text(out_dir / ".progress" / f"{stem}.json"))
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        return {}
    return row if isinstance(row, dict) else {}


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
