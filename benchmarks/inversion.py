"""Seconds per image of RLS (200 steps) and RLS+ (50 steps) at several batch sizes, with peak memory; prints one
JSON line.

    python benchmarks/inversion.py --preset demo --resolution 64 --batch-sizes 1 8          # the 2-core CPU
    python benchmarks/inversion.py --resolution 1024 --batch-sizes 1 4 16 --precision bf16-mixed

Each stage runs ``--timed-steps`` optimizer steps after ``--warmup-steps`` in a real Lightning Trainer (random
generator of the preset's size, random flow of the paper's size, early stopping off); the per-step time is
extrapolated to the paper's step counts (sec. 4). Both stages process the whole batch at once: RLS with shared
weights, RLS+ with one set of generator weights per image.
"""
from __future__ import annotations

import argparse
import logging
import time
import warnings

import lightning as L
import torch
from _common import emit, generator_config, peak_memory_mib, reset_peak_memory, sync, untrained_flow

from rls_lightning.inversion.callbacks import L1BallProjection
from rls_lightning.inversion.latent_search import LatentSearch
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings, SearchSettings
from rls_lightning.stylegan import Generator


class StepTimer(L.Callback):
    """Seconds per optimizer step as the loop runs them: from one step's start to the next one's, so the time
    between steps (loop bookkeeping, hooks, the loader) counts too; the last step ends at the end of training."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._start = warmup, [], None

    def _lap(self, trainer, pl_module) -> None:
        sync(pl_module.device)
        now = time.perf_counter()
        if self._start is not None and trainer.global_step > self.warmup:
            self.times.append(now - self._start)
        self._start = now

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._lap(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        self._lap(trainer, pl_module)


def time_stage(module: L.LightningModule, steps: int, warmup: int, accelerator: str, precision: str,
               callbacks: list) -> float:
    """The stage as ``InversionJob`` runs it: one epoch of ``steps + warmup`` steps."""
    timer = StepTimer(warmup)
    L.Trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=steps + warmup,
              max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[timer, *callbacks]).fit(module)
    return sum(timer.times) / max(1, len(timer.times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["config-f", "demo"], default="config-f", help="channel layout")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--factor", type=int, default=8, help="super-resolution factor of the LR input")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--stages", nargs="+", choices=["rls", "rls+"], default=["rls", "rls+"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="32-true", help="32-true or bf16-mixed")
    parser.add_argument("--fused-modconv", action="store_true", help="grouped (official) modulated convs in RLS")
    parser.add_argument("--channels-last", action="store_true", help="NHWC activations in the generator")
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--timed-steps", type=int, default=3)
    parser.add_argument("--flow-hidden", type=int, default=None, help="MADE width (default 2 x w_dim)")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    accelerator = "gpu" if device.type == "cuda" else "cpu"

    G = Generator(generator_config(args.preset, args.resolution)).eval()
    G.synthesis.fused_modconv = args.fused_modconv
    G.synthesis.channels_last = args.channels_last
    flow = untrained_flow(G, args.flow_hidden)
    lr_size = args.resolution // args.factor
    search, refine = SearchSettings(), RefineSettings(early_stopping_patience=None)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for batch in args.batch_sizes:
        targets = torch.rand(batch, 3, lr_size, lr_size, generator=generator) * 2 - 1
        init = torch.randn(batch, G.num_ws, G.w_dim, generator=generator) * 0.1
        for stage in args.stages:
            if stage == "rls":
                module, steps, callbacks = LatentSearch(G, flow, targets, args.factor, search, init), search.steps, []
            else:
                module = Refinement(G, targets, args.factor, init, list(G.noise_inputs), refine)
                steps, callbacks = refine.steps, [L1BallProjection(refine.radius(G.w_dim))]
            reset_peak_memory(device)
            try:
                per_step = time_stage(module, args.timed_steps, args.warmup_steps, accelerator, args.precision,
                                      callbacks)
            except torch.OutOfMemoryError:
                rows.append({"stage": stage, "batch": batch, "error": "out of memory"})
                torch.cuda.empty_cache()
                continue
            rows.append({"stage": stage, "batch": batch, "seconds_per_step": round(per_step, 4),
                         "seconds_per_image": round(per_step * steps / batch, 3),
                         "peak_memory_mib": peak_memory_mib(device)})
    per_image = {(r["stage"], r["batch"]): r.get("seconds_per_image") for r in rows}
    both = {b: per_image[("rls", b)] + per_image[("rls+", b)] for b in args.batch_sizes
            if per_image.get(("rls", b)) and per_image.get(("rls+", b))}
    emit("inversion", device, preset=args.preset, resolution=args.resolution, factor=args.factor,
         precision=args.precision, fused_modconv=args.fused_modconv, channels_last=args.channels_last,
         steps={"rls": search.steps, "rls+": refine.steps}, timed_steps=args.timed_steps, results=rows,
         rls_then_rls_plus_seconds_per_image={str(b): round(s, 3) for b, s in both.items()})


if __name__ == "__main__":
    main()
