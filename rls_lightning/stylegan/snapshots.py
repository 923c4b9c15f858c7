"""The StyleGAN2 trainer's snapshots (``python -m rls_lightning.cli.train_stylegan``): the EMA generator in our
format and a fixed-seed sample grid, written every few steps and at the end of training."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class Snapshot(L.Callback):
    """Every ``every`` steps and at the end: G_ema to ``out`` (our format) and a fixed-seed sample grid."""

    def __init__(self, out: Path, run_dir: Path, every: int, started: float, data: Path) -> None:
        self.out, self.run_dir, self.every, self.started, self.data = out, run_dir, every, started, data

    def write(self, trainer, module) -> None:
        from ..image_io import image_grid, save_png_atomic
        from .loading import save_generator
        from .training import generator_for_export

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
