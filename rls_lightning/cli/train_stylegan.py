"""Train a StyleGAN2 generator on a folder or zip of aligned faces (the embedded demo model is made with this).

    python -m rls_lightning.cli.train_stylegan --data ../shared/data/faces64/faces64.zip
    python -m rls_lightning.cli.train_stylegan --data faces/ --resume last          # continue an interrupted run

Holds out --holdout images (a seeded split, listed in RUN_DIR/split.json) that training never sees. Every
--snapshot-every steps it writes the EMA generator in our format to --out (atomically, with w_avg), a fixed-seed
sample grid to RUN_DIR/samples.png, and a resumable Lightning checkpoint to RUN_DIR/checkpoints/last.ckpt.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import lightning as L
import torch
from jsonargparse import ActionConfigFile, ArgumentParser

from rls_lightning.cli.defaults import DEMO_GENERATOR


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m rls_lightning.cli.train_stylegan", description=__doc__, default_env=False)
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of the options below")
    io = p.add_argument_group("files")
    io.add_argument("--data", type=Path, required=True, help="folder or .zip of square RGB images")
    io.add_argument("--out", type=Path, default=DEMO_GENERATOR, help="generator file written at every snapshot")
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
    hw.add_argument("--accelerator", type=str, default="auto")
    hw.add_argument("--devices", type=int, default=1)
    hw.add_argument("--precision", type=str, default="auto",
                    help="'auto' = bf16-mixed on a GPU or a CPU with native bf16 (AVX512-BF16, AMX), else 32-true")
    hw.add_argument("--workers-progress", type=bool, default=True, help="show the rich progress bar")
    return p


class Snapshot(L.Callback):
    """Every ``every`` steps and at the end: G_ema to ``out`` (our format) and a fixed-seed sample grid."""

    def __init__(self, out: Path, run_dir: Path, every: int, started: float, data: Path) -> None:
        self.out, self.run_dir, self.every, self.started, self.data = out, run_dir, every, started, data

    def write(self, trainer, module) -> None:
        from rls_lightning.image_io import image_grid, save_png_atomic
        from rls_lightning.stylegan import save_generator
        from rls_lightning.stylegan.training import generator_for_export

        if not trainer.is_global_zero:
            return
        G = generator_for_export(module, w_avg_samples=20_000)
        save_generator(G, self.out, extra={
            "kimg": float(module.images_seen) / 1000, "steps": int(module.iteration), "data": str(self.data),
            "hparams": {k: v for k, v in module.hparams.items() if isinstance(v, (int, float, str, bool, dict))},
        })
        z = torch.randn(32, G.z_dim, generator=torch.Generator().manual_seed(1234))
        with torch.no_grad():
            images = G.synthesis(G.mapping(z)[:, None].expand(-1, G.num_ws, -1))
        save_png_atomic(image_grid(images, columns=8), self.run_dir / "samples.png")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if int(pl_module.iteration) % self.every == 0:
            self.write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.write(trainer, pl_module)


def main(argv: list[str] | None = None) -> int:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from rls_lightning.atomic import atomic_write_path
    from rls_lightning.cli.progress import CleanRichProgressBar, silence_known_lightning_warnings
    from rls_lightning.cli.common import resolve_precision, resume_checkpoint
    from rls_lightning.stylegan import GeneratorConfig
    from rls_lightning.stylegan.image_folder import list_images, load_images, split_names
    from rls_lightning.stylegan.training import OPTIMIZER_STEPS_PER_BATCH, StyleGAN2Training

    args = build_parser().parse_args(argv)
    silence_known_lightning_warnings()
    if not args.data.exists():
        print(f"error: {args.data}: no such folder or zip", file=sys.stderr)
        return 2
    names = list_images(args.data)
    if len(names) <= args.holdout:
        print(f"error: {args.data}: {len(names)} images, not more than --holdout {args.holdout}", file=sys.stderr)
        return 2
    train_names, held_out = split_names(names, args.holdout, args.split_seed)
    run_dir = Path(args.run_dir)
    with atomic_write_path(run_dir / "split.json") as tmp:
        tmp.write_text(json.dumps({"data": str(args.data), "seed": args.split_seed, "held_out": held_out}))
    images = load_images(args.data, train_names, args.resolution)
    config = GeneratorConfig(img_resolution=args.resolution, z_dim=args.w_dim, w_dim=args.w_dim,
                             mapping_layers=args.mapping_layers, channel_base=args.channel_base,
                             channel_max=args.channel_max)
    module = StyleGAN2Training(config, images, batch_size=args.batch_size, lr=args.lr, r1_gamma=args.r1_gamma,
                               pl_weight=args.pl_weight, style_mixing=args.style_mixing, mirror=args.mirror,
                               seed=args.seed)
    L.seed_everything(args.seed, verbose=False)
    batches = int(args.kimg * 1000 / (args.batch_size * args.devices))
    try:
        ckpt_path = resume_checkpoint(run_dir, args.resume)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # enable_version_counter=False: a resumed run must overwrite last.ckpt, not start a last-v1.ckpt beside it.
    callbacks = [ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=args.snapshot_every * OPTIMIZER_STEPS_PER_BATCH,
                                 enable_version_counter=False),
                 Snapshot(args.out, run_dir, args.snapshot_every, time.time(), args.data)]
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
    if trainer.is_global_zero:
        print(f"generator written to {args.out} after {float(module.images_seen) / 1000:.1f} kimg; "
              f"samples in {run_dir / 'samples.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
