"""Train a StyleGAN2 generator on a folder or zip of aligned faces (the embedded demo model is made with this).

    python -m rls_lightning.cli.train_stylegan --data ../shared/data/faces64/faces64.zip
    python -m rls_lightning.cli.train_stylegan --data faces/ --resume last          # continue an interrupted run

Holds out --holdout images (a seeded split, listed in RUN_DIR/split.json) that training never sees. Every
--snapshot-every steps it writes the EMA generator in our format to --out (atomically, with w_avg), a fixed-seed
sample grid to RUN_DIR/samples.png, and a resumable Lightning checkpoint to RUN_DIR/checkpoints/last.ckpt.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from typing import TYPE_CHECKING

from jsonargparse import ActionConfigFile, ArgumentParser

from rls_lightning.cli.arguments import (PRINT_CONFIG, ParagraphHelpFormatter, check_output_file, check_output_folder,
                                         parse_args)
from rls_lightning.paths import DEMO_GENERATOR
from rls_lightning.cli.errors import UsageError, check_float, check_input_dir, check_int, guarded

if TYPE_CHECKING:  # Lightning and torch are imported once the options are known to be good
    import lightning as L


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m rls_lightning.cli.train_stylegan", description=__doc__, default_env=False,
                       formatter_class=ParagraphHelpFormatter, print_config=PRINT_CONFIG)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    io = p.add_argument_group("files")
    io.add_argument("--data", type=Path, required=True, help="folder or .zip of square RGB images")
    io.add_argument("--out", type=Path | None, default=None,
                    help="generator file written at every snapshot (default: <run-dir>/generator.pt; the shipped "
                         f"{DEMO_GENERATOR} is only written when named here)")
    io.add_argument("--run-dir", type=Path, default=Path("runs/stylegan"), help="checkpoints, samples, logs, split")
    io.add_argument("--resume", type=str | None, default=None, help="'last' or a .ckpt path to continue from")
    io.add_argument("--holdout", type=int, default=1000, help="images held out for validation (never trained on)")
    io.add_argument("--split-seed", type=int, default=0, help="seed of the train / held-out split")
    arch = p.add_argument_group("architecture (the demo model: 64 px, w_dim 256, about 4.8 M parameters)")
    arch.add_argument("--resolution", type=int, default=64)
    arch.add_argument("--w-dim", type=int, default=256, help="z_dim and w_dim")
    arch.add_argument("--mapping-layers", type=int, default=8)
    arch.add_argument("--channel-base", type=int, default=4096, help="channels min(base / r, max)")
    arch.add_argument("--channel-max", type=int, default=256)
    arch.add_argument("--framing", type=str, default="faces64",
                      help="how the training faces are cropped, stored in the generator file so that invert.py "
                           "--photos aligns faces the same way: faces64 (the demo data) or ffhq")
    train = p.add_argument_group("training (stylegan2-ada-pytorch defaults where they apply)")
    train.add_argument("--batch-size", type=int, default=32, help="images per step and device")
    train.add_argument("--kimg", type=float, default=5000, help="stop after this many thousand real images")
    train.add_argument("--max-minutes", type=float | None, default=None, help="stop after this wall-clock time")
    train.add_argument("--lr", type=float, default=0.0025)
    train.add_argument("--r1-gamma", type=float | None, default=None, help="default 0.0002 * R^2 / batch")
    train.add_argument("--pl-weight", type=float, default=2.0, help="path-length regularisation weight")
    train.add_argument("--style-mixing", type=float, default=0.9)
    train.add_argument("--mirror", type=bool, default=True, help="random horizontal flips")
    train.add_argument("--snapshot-every", type=int, default=500, help="steps between snapshots")
    train.add_argument("--seed", type=int, default=0)
    hw = p.add_argument_group("hardware")
    hw.add_argument("--accelerator", type=str, default="auto", help="auto, cpu, gpu, cuda or mps")
    hw.add_argument("--devices", type=int, default=1, help="devices; >1 uses DDP")
    hw.add_argument("--precision", type=str, default="auto",
                    help="'auto' = bf16-mixed on a GPU or a CPU with native bf16 (AVX512-BF16, AMX), else 32-true")
    hw.add_argument("--workers-progress", type=bool, default=True, help="show the rich progress bar")
    return p


def count_images(data: Path) -> int:
    """How many images ``--data`` holds; an unreadable zip is a usage error."""
    import zipfile

    from rls_lightning.stylegan.image_folder import list_images

    try:
        return len(list_images(data))
    except zipfile.BadZipFile:
        raise UsageError(f"--data {data}: neither a folder nor a readable zip file") from None


def validate_args(args) -> Path | None:
    """Every option checked before any work (one line naming option, value and what is allowed); returns the
    checkpoint to resume from."""
    from rls_lightning.cli.common import check_training_hardware, resume_checkpoint

    check_int("--resolution", args.resolution, 4)
    if args.resolution & (args.resolution - 1):
        raise UsageError(f"--resolution {args.resolution}: must be a power of two >= 4 (8, 16, 32, 64, ...)")
    check_int("--w-dim", args.w_dim, 1)
    check_int("--mapping-layers", args.mapping_layers, 1)
    check_int("--channel-base", args.channel_base, 1)
    check_int("--channel-max", args.channel_max, 1)
    check_int("--batch-size", args.batch_size, 1)
    check_float("--kimg", args.kimg, positive=True)
    check_float("--max-minutes", args.max_minutes, positive=True)
    check_float("--lr", args.lr, positive=True)
    check_float("--r1-gamma", args.r1_gamma, non_negative=True)
    check_float("--pl-weight", args.pl_weight, non_negative=True)
    check_float("--style-mixing", args.style_mixing, non_negative=True, at_most=1.0)
    check_int("--snapshot-every", args.snapshot_every, 1)
    check_int("--holdout", args.holdout, 0)
    check_int("--seed", args.seed, 0, 2**32 - 1)  # seed_everything's range
    check_int("--split-seed", args.split_seed, 0, 2**32 - 1)
    check_training_hardware(args.accelerator, args.devices, 1, args.precision)
    from rls_lightning.stylegan import GeneratorConfig

    try:  # the limits of the architecture itself (e.g. --channel-base below --resolution leaves no channel)
        GeneratorConfig(img_resolution=args.resolution, z_dim=args.w_dim, w_dim=args.w_dim,
                        mapping_layers=args.mapping_layers, channel_base=args.channel_base,
                        channel_max=args.channel_max, framing=args.framing)
    except ValueError as err:
        raise UsageError(f"architecture options (--resolution, --w-dim, --mapping-layers, --channel-base, "
                         f"--channel-max): {err}") from None
    if args.kimg * 1000 < args.batch_size * args.devices:
        raise UsageError(f"--kimg {args.kimg:g}: less than one step of --batch-size {args.batch_size} x "
                         f"{args.devices} device(s); at least {args.batch_size * args.devices / 1000:g}")
    if not args.data.exists():
        raise UsageError(f"--data {args.data}: no such folder or zip")
    if args.data.is_dir():
        check_input_dir("--data", args.data)
    count = count_images(args.data)
    if count == 0:
        raise UsageError(f"--data {args.data}: no images (.png, .jpg, ...) in it")
    per_step = args.batch_size * args.devices  # whole batches only (drop_last): fewer images never make a step
    if count - args.holdout < per_step:
        raise UsageError(f"--holdout {args.holdout}: leaves {max(count - args.holdout, 0)} of the {count} images "
                         f"of --data {args.data} for training, fewer than one step ({per_step})")
    if args.out is None:
        args.out = Path(args.run_dir) / "generator.pt"
    check_output_file("--out", args.out, not_equal={"--data": args.data})
    check_output_folder("--run-dir", args.run_dir, not_equal={"--data": args.data})
    return resume_checkpoint(args.run_dir, args.resume)


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    ckpt_path = validate_args(args)

    from rls_lightning.cli.common import StopAtStepBoundary, report_interruption
    from rls_lightning.interrupts import Interrupted, StopRequests
    from rls_lightning.stylegan.training import OPTIMIZER_STEPS_PER_BATCH

    checkpoint = Path(args.run_dir) / "checkpoints" / "last.ckpt"
    with StopRequests() as stop:
        stopper = StopAtStepBoundary(stop, checkpoint)
        try:
            return train(args, ckpt_path, stopper)
        except Interrupted as err:
            step = None if stopper.saved_step is None else stopper.saved_step // OPTIMIZER_STEPS_PER_BATCH
            return report_interruption(err, checkpoint, step)


def train(args, ckpt_path: Path | None, stopper: L.Callback) -> int:
    """Decode the images and train; the generator file and the samples are written at every snapshot."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from rls_lightning.atomic import atomic_write_path
    from rls_lightning.cli.common import check_resume_matches
    from rls_lightning.runtime import resolve_precision
    from rls_lightning.cli.progress import CleanRichProgressBar
    from rls_lightning.runtime import silence_known_lightning_warnings
    from rls_lightning.stylegan import GeneratorConfig
    from rls_lightning.stylegan.image_folder import list_images, load_images, split_names
    from rls_lightning.stylegan.snapshots import Snapshot
    from rls_lightning.stylegan.training import OPTIMIZER_STEPS_PER_BATCH, StyleGAN2Training

    silence_known_lightning_warnings()
    config = GeneratorConfig(img_resolution=args.resolution, z_dim=args.w_dim, w_dim=args.w_dim,
                             mapping_layers=args.mapping_layers, channel_base=args.channel_base,
                             channel_max=args.channel_max, framing=args.framing)
    hparams = dict(batch_size=args.batch_size, lr=args.lr, r1_gamma=args.r1_gamma, pl_weight=args.pl_weight,
                   style_mixing=args.style_mixing, mirror=args.mirror, seed=args.seed)
    if ckpt_path is not None:  # before decoding the images: a checkpoint of another architecture is refused now
        no_images = torch.empty((0, 3, args.resolution, args.resolution), dtype=torch.uint8)
        check_resume_matches(args.resume, ckpt_path, StyleGAN2Training(config, no_images, **hparams))
    names = list_images(args.data)
    train_names, held_out = split_names(names, args.holdout, args.split_seed)
    run_dir = Path(args.run_dir)
    with atomic_write_path(run_dir / "split.json") as tmp:
        tmp.write_text(json.dumps({"data": str(args.data), "seed": args.split_seed, "held_out": held_out}))
    try:
        images = load_images(args.data, train_names, args.resolution)
    except ValueError as err:  # an undecodable image, named with its file
        raise UsageError(f"--data {err}") from None
    module = StyleGAN2Training(config, images, **hparams)
    L.seed_everything(args.seed, verbose=False)
    batches = int(args.kimg * 1000 / (args.batch_size * args.devices))
    # enable_version_counter=False: a resumed run must overwrite last.ckpt, not start a last-v1.ckpt beside it.
    callbacks = [ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=args.snapshot_every * OPTIMIZER_STEPS_PER_BATCH,
                                 enable_version_counter=False),
                 Snapshot(args.out, run_dir, args.snapshot_every, time.time(), args.data), stopper]
    if args.workers_progress:
        callbacks.append(CleanRichProgressBar())
    trainer = L.Trainer(
        accelerator=args.accelerator, devices=args.devices, strategy="ddp" if args.devices > 1 else "auto",
        precision=resolve_precision(args.precision, args.accelerator),
        max_steps=batches * OPTIMIZER_STEPS_PER_BATCH, max_epochs=-1,
        max_time={"minutes": args.max_minutes} if args.max_minutes else None, logger=CSVLogger(run_dir, name="logs"),
        callbacks=callbacks, enable_progress_bar=args.workers_progress, log_every_n_steps=20,
        num_sanity_val_steps=0, benchmark=True)
    print(f"training on {len(train_names)} images ({len(held_out)} held out, see {run_dir / 'split.json'}); "
          f"{batches} steps of {args.batch_size} images per device")
    trainer.fit(module, ckpt_path=ckpt_path, weights_only=True)
    stopper.stop.check()  # a signal during the last step: last.ckpt and the generator file are complete
    if trainer.is_global_zero:
        print(f"generator written to {args.out} after {float(module.images_seen) / 1000:.1f} kimg; "
              f"samples in {run_dir / 'samples.png'}")
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
