"""``RLS``: the method as a Python object. Load a generator and its flow prior once, then super-resolve images or
restore photographs in memory, with any preset and setting as keyword arguments:

    from rls_lightning import RLS
    model = RLS.from_pretrained()                              # the demo model; or "ffhq-1024", or paths
    out = model.super_resolve(["face.png"], preset="rls+", seed=0)
    out[0].image.save("face_sr.png")

    run = model.super_resolve_folder("data/demo/lr8x", hr_dir="data/demo/hr")   # what invert.py runs

The solver is ``invert.py``'s (``inversion.solver.solve``): for the same settings, seed and batch size the pixels
are those ``invert.py`` writes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..runtime import DEVICES, PRECISIONS, resolve_device  # noqa: F401 - the names the API accepts
from .folders import FolderRun, PhotoOptions, check_flow
from .loading import LoadedModels, load_models
from .results import PhotoRestoration, SuperResolution
from .settings import build_settings, plain_number

def trainer_options(device: str, precision: str):
    """The solver's ``TrainerOptions`` for a torch device name (``auto``: the first GPU if any, else the CPU;
    ``cuda:N``; ``mps``) and a Lightning precision (``auto``: bf16-mixed where the device has fast bf16, else
    32-true); ``runtime.resolve_device`` decides, a bad name is a ``ValueError``."""
    from ..inversion.solver import TrainerOptions

    accelerator, devices, precision = resolve_device(device, precision)
    return TrainerOptions(accelerator=accelerator, devices=devices, precision=precision)


class RLS:
    """A StyleGAN2 generator and its flow prior, ready to super-resolve (paper sec. 3: RLS, then RLS+)."""

    def __init__(self, models: LoadedModels, *, device: str = "auto", precision: str = "32-true") -> None:
        self.models = models
        self.device, self.precision = device, precision

    @classmethod
    def from_pretrained(cls, name: str | os.PathLike | None = None, *, generator: str | os.PathLike | None = None,
                        flow: str | os.PathLike | None = None, force: bool = False, device: str = "auto",
                        precision: str = "32-true", weights_dir: str | os.PathLike | None = None,
                        offline: bool | None = None, fused_modconv: bool = False,
                        channels_last: bool = False) -> "RLS":
        """The demo model (no argument), a registry generator (``"ffhq-1024"``, downloaded once and verified) or
        a generator file (``generator=`` or the first argument), with ``flow=`` or else the flow ``train_flow.py``
        trained for that generator (see ``loading.flow_for``). ``force`` uses a flow of another generator anyway.
        ``device``: auto, cpu, cuda, cuda:N or mps; ``precision``: 32-true (float32, TF32 off), 64-true (float64: the
        picture does not change with the CPU's kernels; 2-3x the time, 2x the memory), bf16-mixed, 16-mixed (GPU)
        or auto.
        ``fused_modconv`` / ``channels_last``: as ``invert.py``'s options of those names."""
        if name is not None and generator is not None:
            raise ValueError("give the generator once: as the first argument or as generator=")
        trainer_options(device, precision)  # a bad device or precision before anything is loaded
        models = load_models(generator if generator is not None else name, flow, force=force,
                             weights_dir=weights_dir, offline=offline, fused_modconv=fused_modconv,
                             channels_last=channels_last)
        return cls(models, device=device, precision=precision)

    # ------------------------------------------------------------------ what it is

    @property
    def generator(self):
        return self.models.generator

    @property
    def flow(self):
        return self.models.flow

    @property
    def resolution(self) -> int:
        return self.models.generator.img_resolution

    def __repr__(self) -> str:
        flow = self.models.flow_path or "no flow prior"
        return f"RLS({self.models.generator_path}, {self.resolution} px, flow: {flow}, device={self.device!r})"

    # ------------------------------------------------------------------ jobs

    def job(self, out_dir: str | os.PathLike, settings, *, batch_size: int = 4, num_samples: int = 1, seed: int = 0,
            progress=None, log: Callable[[str], None] = print, stop=None, save_inputs: bool = False,
            writes_summary: bool = True, trainer=None):
        """The ``InversionJob`` of one run over ``out_dir`` (the folder job behind ``super_resolve_folder``):
        ``settings`` from ``build_settings``; ``trainer`` (``TrainerOptions``) overrides the model's device and
        precision."""
        from ..inversion.job import InversionJob
        from ..runtime import silence_known_lightning_warnings

        silence_known_lightning_warnings()
        _check_counts(batch_size, num_samples, seed)
        return InversionJob(self.models.generator, self.models.flow, settings, Path(out_dir),
                            batch_size=batch_size, num_samples=num_samples, seed=seed,
                            trainer=trainer or trainer_options(self.device, self.precision), progress=progress,
                            log=log, writes_summary=writes_summary, stop=stop, save_inputs=save_inputs)

    def _settings(self, preset: str, settings, overrides: dict):
        if settings is not None:
            if overrides:
                raise ValueError(f"give either settings= or keyword settings ({', '.join(overrides)}), not both")
            if preset not in ("rls+", settings.name):  # "rls+" is the default: a preset not given
                raise ValueError(f"preset={preset!r} and settings= of preset {settings.name}: give one of them")
            return settings
        settings = build_settings(preset, **overrides)
        check_flow(settings, self.models)
        noise = overrides.get("trainable_noise")  # as invert.py --trainable-noise
        if noise is not None and noise > len(self.models.generator.noise_inputs):
            raise ValueError(f"trainable_noise={noise}: this generator has "
                             f"{len(self.models.generator.noise_inputs)} noise maps")
        return settings

    def super_resolve(self, images: Any, preset: str = "rls+", *, seed: int = 0, num_samples: int = 1,
                      batch_size: int = 4, names: list[str] | None = None, settings=None, progress: Any = False,
                      **overrides) -> list[SuperResolution]:
        """Super-resolve ``images`` (paths, PIL images, numpy arrays ``[h, w, 3]``, tensors ``[3, h, w]`` or
        ``[N, 3, h, w]`` in [0, 1], or a list of them; see ``inputs``) to the generator's resolution: one
        ``SuperResolution`` per image, in order.

        ``preset`` and ``overrides`` (``steps``, ``refine_steps``, ``lambda_w``, ... as ``invert.py``'s options;
        see ``settings.OVERRIDES``) or a ready ``settings`` object choose the method; ``num_samples`` K > 1 gives
        K results per image from different initialisations (paper Figure 7) and their per-pixel spread;
        ``batch_size`` images are optimised together (the results equal one-at-a-time runs up to float rounding;
        ``invert.py``'s pixels exactly at the same batch size). ``progress``: True prints one line per finished
        image (and every few steps) on stderr; or a rich ``Progress``.
        """
        from ..inversion.solver import solve
        from ..runtime import silence_known_lightning_warnings
        from .inputs import to_low_res

        settings = self._settings(preset, settings, overrides)
        _check_counts(batch_size, num_samples, seed)
        low_res = to_low_res(images, self.resolution, names, self.models.generator.img_channels)
        silence_known_lightning_warnings()
        finished = solve(self.models.generator, low_res, flow=self.models.flow, settings=settings,
                         batch_size=batch_size, num_samples=num_samples, seed=seed,
                         trainer=trainer_options(self.device, self.precision), progress=_progress(progress))
        return [SuperResolution.from_samples(image.stem, image.factor, finished[id(image)], image.note)
                for image in low_res]

    def super_resolve_folder(self, lr_dir: str | os.PathLike | None = None, preset: str = "rls+", *,
                             photos: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None,
                             hr_dir: str | os.PathLike | None = None, seed: int = 0, num_samples: int = 1,
                             batch_size: int = 4, settings=None, photo_options: PhotoOptions = PhotoOptions(),
                             progress: Any = False, log: Callable[[str], None] = print,
                             report: Callable[[object], None] | None = None,
                             warn: Callable[[str], None] | None = None, stop=None, lock: bool = True,
                             shard: tuple[int, int] = (0, 1), writes_summary: bool = True,
                             after_solving: Callable[[], None] | None = None, **overrides) -> FolderRun:
        """What ``invert.py`` runs: every LR face of ``lr_dir`` (or every face of the photographs in ``photos``)
        super-resolved into ``out_dir`` (default ``<folder>_<preset>`` beside it), with results.csv, overview.png
        and, for photos, the restored photographs; a rerun continues where an interrupted one stopped, and only
        this tool's own outputs are ever replaced. ``hr_dir``: ground truth shown in overview.png. Returns a
        ``FolderRun`` (done / total, where the summaries are). ``preset`` with keyword settings (``overrides``) or
        ``settings``, ``seed``, ``num_samples``, ``batch_size`` and ``progress`` as ``super_resolve``; ``report``,
        ``warn``, ``stop``, ``lock``, ``shard``, ``writes_summary`` and ``after_solving`` as
        ``folders.super_resolve_folder``."""
        from .folders import super_resolve_folder, warn_on_stderr

        if (lr_dir is None) == (photos is None):
            raise ValueError("give exactly one of lr_dir (aligned LR face crops) and photos (photographs)")
        settings = self._settings(preset, settings, overrides)
        _check_counts(batch_size, num_samples, seed)
        folder = Path(lr_dir if lr_dir is not None else photos)
        out_dir = Path(out_dir) if out_dir is not None else default_out_dir(folder, settings.name)
        _check_folders("lr_dir" if lr_dir is not None else "photos", folder, hr_dir, out_dir)
        return super_resolve_folder(
            self, settings, out_dir,
            lr_dir=None if lr_dir is None else Path(lr_dir), photos=None if photos is None else Path(photos),
            hr_dir=None if hr_dir is None else Path(hr_dir), photo_options=photo_options, batch_size=batch_size,
            num_samples=num_samples, seed=seed, progress=_progress(progress), log=log, report=report,
            warn=warn or warn_on_stderr, stop=stop, lock=lock, shard=shard, writes_summary=writes_summary,
            after_solving=after_solving)

    def restore_photo(self, photo: Any, preset: str = "rls+", *, seed: int = 0, num_samples: int = 1,
                      batch_size: int = 4, upscale: int = 4, min_face_score: float | None = None,
                      max_faces: int = 16, min_factor: int = 2, framing: str | None = None,
                      settings=None, progress: Any = False, **overrides) -> PhotoRestoration:
        """Restore the faces of one photograph (a path, PIL image or ``[h, w, 3]`` array; any size and framing),
        as ``invert.py --photos`` does: every face found, aligned, super-resolved where the generator adds
        resolution, and pasted back into the photo enlarged ``upscale`` times. Other arguments as
        ``super_resolve``; ``min_face_score``, ``max_faces``, ``min_factor`` and ``framing`` as the options of
        those names."""
        from .folders import PhotoOptions
        from .photos import restore_photo

        settings = self._settings(preset, settings, overrides)
        _check_counts(batch_size, num_samples, seed)
        options = PhotoOptions(framing=framing, min_face_score=min_face_score, max_faces=max_faces, upscale=upscale,
                               min_factor=min_factor)
        return restore_photo(self, photo, settings, seed=seed, num_samples=num_samples, batch_size=batch_size,
                             options=options, progress=_progress(progress))


def default_out_dir(folder: Path, preset: str) -> Path:
    """``<input folder>_<preset>`` beside the input folder (resolved first, so that ``.`` works too)."""
    folder = Path(folder).resolve()
    return folder.with_name(f"{folder.name}_{preset}")


def _check_folders(input_name: str, folder: Path, hr_dir, out_dir: Path) -> None:
    """``invert.py``'s folder checks before any work, as one ``ValueError``: the input folder (and ``hr_dir``)
    readable folders, ``out_dir`` writable and none of them (inputs are never written into)."""
    from ..checks import UsageError, check_run_folders

    try:
        check_run_folders({input_name: folder, "hr_dir": Path(hr_dir) if hr_dir is not None else None},
                          "out_dir", out_dir)
    except UsageError as err:
        raise ValueError(str(err)) from None


def _check_counts(batch_size: int, num_samples: int, seed: int) -> None:
    """The ranges of ``invert.py``'s ``--batch-size``, ``--num-samples`` and ``--seed`` (integers >= 1, 1, 0)."""
    for name, value, low in (("batch_size", batch_size, 1), ("num_samples", num_samples, 1), ("seed", seed, 0)):
        value = plain_number(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name}={value!r}: must be an integer >= {low}")


def _progress(progress: Any):
    """None (silent), the plain-line reporter on stderr for True, or the caller's own progress object."""
    if progress is False or progress is None:
        return None
    if progress is True:
        from ..progress_lines import LineProgress

        return LineProgress()
    return progress

