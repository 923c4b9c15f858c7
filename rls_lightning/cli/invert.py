"""Super-resolve a directory of low-resolution face images with RLS / RLS+ (or a baseline preset).

For every input (any square size that divides the generator's resolution; the factor is inferred) it writes, in
--out-dir: <stem>.png (the result), <stem>_rls.png (the RLS anchor), <stem>.pt (latents and noise), and a row
of results.csv (LR consistency of each stage, steps, seconds), and overview.png (LR | RLS | RLS+ | HR with
--hr-dir, up to 16 rows). With --num-samples K > 1 also <stem>_s{k}.png and <stem>_std.png (per-pixel standard
deviation over the K results). Files that cannot be used are listed with the reason and skipped; a run that is
interrupted continues where it stopped when started again.

results.csv status: ok; skipped (unusable input, or its outputs would collide with another input's or overwrite a
file in --out-dir that this tool did not write: the note says which); diverged (the loss became non-finite even
after 3 restarts at a tenth of the learning rate each; nothing of that image is saved); incomplete (a write was cut
off, e.g. by a full disk; a rerun redoes it). Only one run at a time may use an --out-dir. Ctrl-C or SIGTERM stops
after the current optimisation step: finished images are kept, the exit status is 130 / 143, and a rerun continues.
Exit status 2: a bad option or file, named in one line, before any work is done. --hr-dir files are checked before
the optimisation: one that cannot be shown (unreadable, not an image, too large, or two files of one stem) is named
in one line and in its image's note, and left out of overview.png; the image is super-resolved all the same. What
runs after the optimisation (results.csv, overview.png, the restored photos) only summarises results already on
disk: when it fails, one "warning:" line says what is missing, every result is kept and the exit status stays 0.
Progress: a live bar on a terminal; written to a file or a pipe (a scheduler's log, nohup, CI), plain lines instead:
one per finished image with the time so far and an estimate of the rest, and one every RLS_PROGRESS_EVERY steps
(default 50) of a longer stage.

    python invert.py --lr-dir data/demo/lr8x --hr-dir data/demo/hr
    python invert.py --lr-dir celeba_lr/ --generator ffhq.pkl --flow ffhq-flow.pt --devices 4 --precision bf16-mixed
    python invert.py --lr-dir celeba_lr/ --preset pulse            # or rls, brgm, no-cross, ... (--list-presets)
"""
from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path

from jsonargparse import ActionConfigFile, ArgumentParser

from rls_lightning.cli.arguments import (PRINT_CONFIG, ParagraphHelpFormatter, check_generator, check_input_file,
                                         parse_args)
from rls_lightning.cli.errors import (UsageError, check_choice, check_int, check_inversion_hardware,
                                      check_run_folders, fail, guarded)
from rls_lightning.api.settings import PRESETS, SETTINGS
from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR
from rls_lightning.runtime import resolve_accelerator, silence_known_lightning_warnings


OPTION_TYPES = {"int": int, "float": float, "bool": bool, "choice": str}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python invert.py", description=__doc__, default_env=False,
                       formatter_class=ParagraphHelpFormatter, print_config=PRINT_CONFIG)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    p.add_argument("--list-presets", action="store_true", help="describe every preset and exit")
    io = p.add_argument_group("files")
    io.add_argument("--lr-dir", type=Path | None, default=None,
                    help="folder of low-resolution face crops, aligned to the generator's framing (this or --photos)")
    io.add_argument("--photos", type=Path | None, default=None,
                    help="folder of photographs of any size: every face is found, aligned, super-resolved and pasted "
                         "back (<stem>_restored.png; per face <stem>_face<k>.png, _rls.png, _lr.png, .pt)")
    io.add_argument("--out-dir", type=Path | None, default=None,
                    help="results folder; default: <lr-dir>_<preset> beside the input folder")
    io.add_argument("--generator", type=Path, default=DEMO_GENERATOR,
                    help="StyleGAN2 checkpoint (ours, rosinality .pt or NVIDIA .pkl) or a registry name such as "
                         "ffhq-1024 (downloaded once, verified; python -m rls_lightning.cli.weights list); default: "
                         "the demo model")
    io.add_argument("--flow", type=Path | None, default=None,
                    help="flow prior from train_flow.py; default: the one train_flow.py trained for --generator "
                         f"(found in the weights cache by the generator's fingerprint), else {DEMO_FLOW} with the "
                         "demo generator")
    io.add_argument("--force", action="store_true", help="use a flow trained for another generator anyway")
    io.add_argument("--hr-dir", type=Path | None, default=None,
                    help="ground-truth HR images (same stems), only shown as the last column of overview.png; "
                         "checked before the run (an unusable file is named and not shown)")
    faces = p.add_argument_group("photos (--photos)")
    faces.add_argument("--min-face-score", type=float, default=None,
                       help="MTCNN face probability a detection needs (default 0.9); it must also be 10 px wide "
                            "or more and be found again when enlarged (see rls_lightning/photos/detection.py)")
    faces.add_argument("--max-faces", type=int, default=16, help="at most this many faces per photo, largest first")
    faces.add_argument("--framing", type=str | None, default=None,
                       help="how the generator's training faces were cropped: ffhq or faces64; default: what the "
                            "generator file says (NVIDIA and rosinality files: ffhq)")
    faces.add_argument("--upscale", type=int, default=4,
                       help="the restored photo is the input enlarged this many times (background: bicubic), or "
                            "less where its restored faces would be stretched more than 2x or the photo would pass "
                            "89 megapixels (said per photo)")
    faces.add_argument("--min-factor", type=int, default=2,
                       help="restore a face only if the generator draws it at least this many times larger than "
                            "it is in the photo; other faces stay the plain enlargement (1: every face)")
    faces.add_argument("--photo-memory", type=float, default=2.7,
                       help="GB of memory a photo may take to decode: 24 bytes per pixel, 48 for 16-bit files "
                            "(default: up to 12000x9000, a run within 4 GB); larger photos are refused before "
                            "decoding")
    method = p.add_argument_group("method")
    method.add_argument("--preset", type=str, default="rls+", help=f"one of: {', '.join(PRESETS)}")
    for name in ("num_samples", "seed"):
        setting = SETTINGS[name]
        method.add_argument(setting.option, type=OPTION_TYPES[setting.kind], default=setting.default,
                            help=setting.help_text())
    over = p.add_argument_group("overrides of the preset (default: the preset's value)")
    for setting in SETTINGS.values():  # described once, in the API (api.settings.SETTINGS)
        if setting.override:
            over.add_argument(setting.option, type=OPTION_TYPES[setting.kind] | None, default=None,
                              help=setting.help_text())
    hw = p.add_argument_group("hardware")
    hw.add_argument("--batch-size", type=int, default=4,
                    help="images (x samples) optimised together, in RLS and in RLS+ (each with its own weights); "
                         "at 1024 px an estimated 3 GB of GPU memory per image in float32")
    hw.add_argument("--accelerator", type=str, default="auto", help="cpu, gpu or auto (a GPU when one is visible)")
    hw.add_argument("--devices", type=int, default=1, help="devices per node; >1 shards the images (DDP launch)")
    hw.add_argument("--num-nodes", type=int, default=1, help="machines")
    hw.add_argument("--precision", type=str, default="32-true",
                    help="32-true (float32 throughout: TF32 off on GPUs), 64-true (float64: the picture does not "
                         "change with the CPU's kernels; 2-3x the time, 2x the memory; README, 'Rounding'), "
                         "bf16-mixed, 16-mixed (GPU only) or auto (bf16-mixed where the device has fast bf16, else "
                         "32-true)")
    hw.add_argument("--fused-modconv", type=bool, default=False,
                    help="grouped modulated convolutions (the official inference path) instead of the unfused "
                         "form (equal to 1e-5, faster for optimisation on CPU)")
    hw.add_argument("--channels-last", type=bool, default=False,
                    help="NHWC activations in the generator (equal results; faster or slower depending on device "
                         "and batch, see benchmarks/RESULTS.md)")
    return p


def settings_from_args(args):
    from rls_lightning.api.settings import OVERRIDES

    return build_settings(args.preset, **{name: getattr(args, name) for name in OVERRIDES})


def build_settings(preset: str, **overrides):
    """The settings of ``--preset preset`` with the given overrides (None: the preset's value): the API's
    ``build_settings``, its messages worded as this command's options."""
    from rls_lightning.api.settings import SettingsError, build_settings as settings_of

    try:
        return settings_of(preset, **overrides)
    except SettingsError as err:  # worded as this command's option: --refine-steps 0: ...
        raise UsageError(f"--{err.setting.replace('_', '-')} {err.value}: {err.reason}") from None


def validate_args(args) -> Path:
    """Every option checked before any work (one line naming option, value and what is allowed); returns the
    output folder."""
    from rls_lightning.api.folders import check_photo_options
    from rls_lightning.progress_lines import step_line_every

    check_choice("--preset", args.preset, PRESETS)
    try:
        step_line_every()  # read by the progress lines of a log
    except ValueError as err:
        raise UsageError(str(err)) from None
    if (args.lr_dir is None) == (args.photos is None):
        raise UsageError("give exactly one of --lr-dir (aligned LR face crops) and --photos (photographs)")
    input_option, input_dir = ("--lr-dir", args.lr_dir) if args.lr_dir is not None else ("--photos", args.photos)
    check_photo_options({field: getattr(args, PHOTO_OPTIONS[field]) for field in PHOTO_OPTIONS},
                        lambda field: "--" + PHOTO_OPTIONS[field].replace("_", "-"))
    for setting in SETTINGS.values():  # each value against its one description
        value = getattr(args, setting.name)
        if value is not None and not setting.accepts(value):
            raise UsageError(f"{setting.option} {value}: must be {setting.allowed()}")
    check_int("--batch-size", args.batch_size, 1)
    settings_from_args(args)  # what the preset and its overrides make together (e.g. rls without RLS+ steps)
    check_inversion_hardware(args.accelerator, args.devices, args.num_nodes, args.precision)
    from rls_lightning.api.model import default_out_dir

    out_dir = args.out_dir or default_out_dir(input_dir, args.preset)
    check_run_folders({input_option: input_dir, "--hr-dir": args.hr_dir}, "--out-dir", out_dir)
    args.generator = check_generator(args.generator, "pass --generator and --flow")
    check_input_file("--flow", args.flow, required=False)
    return out_dir


# PhotoOptions' fields and the options (their dest) that set them
PHOTO_OPTIONS = {"framing": "framing", "min_face_score": "min_face_score", "max_faces": "max_faces",
                 "upscale": "upscale", "min_factor": "min_factor", "memory_gb": "photo_memory"}


def photo_options(args):
    """The ``--photos`` options as the API's ``PhotoOptions``."""
    from rls_lightning.api.folders import PhotoOptions

    return PhotoOptions(**{field: getattr(args, dest) for field, dest in PHOTO_OPTIONS.items()})


def device_name(accelerator: str, local_device: int | None) -> str:
    """The API's device name for ``--accelerator`` (cpu, gpu, cuda, mps, auto) and a rank's local GPU."""
    accelerator = resolve_accelerator(accelerator)
    if accelerator == "gpu":
        return "cuda" if local_device is None else f"cuda:{local_device}"
    return accelerator


def run(args, out_dir: Path, rank: int = 0, world: int = 1, local_device: int | None = None, barrier=None) -> int:
    import torch
    from rich.console import Console

    from rls_lightning.api import FlowMissing, NothingToDo
    from rls_lightning.api.loading import load_models
    from rls_lightning.api.model import RLS
    from rls_lightning.cli.progress import job_progress
    from rls_lightning.folder_lock import FolderBusy
    from rls_lightning.interrupts import Interrupted, StopRequests
    from rls_lightning.lr_images import Rejected

    console = Console(stderr=True, quiet=rank != 0, soft_wrap=True)  # one line per message, even in logs
    plain = functools.partial(console.print, markup=False, highlight=False)  # file names are not markup
    settings = settings_from_args(args)
    with StopRequests() as stop:
        try:
            models = load_models(args.generator, args.flow, force=args.force, fused_modconv=args.fused_modconv,
                                 channels_last=args.channels_last)  # without --flow: the one found for it
            check_int("--trainable-noise", args.trainable_noise, 0, len(models.generator.noise_inputs))
            if models.flow_source == "cache":
                plain(models.describe_flow())
            model = RLS(models, device=device_name(args.accelerator, local_device), precision=args.precision)
            # a live bar on a terminal; in a log (a file, a pipe) one line per image and every few steps
            with job_progress(console, enabled=rank == 0) as progress:
                try:
                    finished = model.super_resolve_folder(
                        args.lr_dir, photos=args.photos, out_dir=out_dir, hr_dir=args.hr_dir, settings=settings,
                        seed=args.seed, num_samples=args.num_samples, batch_size=args.batch_size,
                        photo_options=photo_options(args), progress=progress, log=console.print, stop=stop,
                        report=lambda problem: console.print(str(problem), markup=False, highlight=False,
                                                             style="yellow" if isinstance(problem, Rejected) else None),
                        warn=lambda line: plain(f"warning: {line}"), lock=rank == 0, shard=(rank, world),
                        writes_summary=rank == 0, after_solving=barrier)
                except torch.OutOfMemoryError:
                    return fail(f"out of {resolve_accelerator(args.accelerator).upper()} memory with --batch-size "
                                f"{args.batch_size}: lower it, or use --precision bf16-mixed; finished images are "
                                "kept and a rerun continues from there")
            if rank == 0:
                shows = ("photo | restored | faces" if args.photos is not None
                         else f"LR | RLS | RLS+{' | HR' if args.hr_dir else ''}")
                what = "face(s)" if args.photos is not None else "image(s)"
                plain(f"done: {finished.done} of {finished.total} {what} super-resolved in {out_dir} (summary: "
                      f"{finished.csv_path or 'not written'}; {shows}: {finished.overview or 'not written'})")
            if stop.requested is not None:  # its raise was dropped on the way (interrupts.py), the run went on
                print(f"interrupted ({signal.Signals(stop.requested).name}) as the run finished: what it says above "
                      "is written", file=sys.stderr)
                return 128 + stop.requested
        except FlowMissing as err:
            raise UsageError(f"preset {err.preset} needs a flow prior for {err.generator}: pass --flow (train one "
                             f"with: {err.command})") from None
        except (FolderBusy, NothingToDo) as err:
            raise UsageError(str(err)) from None
        except Interrupted as err:
            note = err.run.progress_note if hasattr(err, "run") else "no image finished yet; rerun to start again"
            print(f"interrupted ({err}): {note}", file=sys.stderr)
            return err.exit_code
    return 0


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    if args.list_presets:
        for name, preset in PRESETS.items():
            print(f"{name}\n    {preset.description}\n")
        return 0
    out_dir = validate_args(args)
    silence_known_lightning_warnings()
    world = args.devices * args.num_nodes
    if world == 1:
        return run(args, out_dir)

    import lightning as L

    fabric = L.Fabric(accelerator=args.accelerator, devices=args.devices, num_nodes=args.num_nodes, strategy="ddp")
    return fabric.launch(lambda f: run(args, out_dir, f.global_rank, f.world_size, f.local_rank, f.barrier))


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
