"""Seconds per image of RLS (200 steps) and RLS+ (50 steps) at several batch sizes; prints JSON.

    python benchmarks/inversion.py --resolution 256 --batch-sizes 1 8            # CPU: a few timed steps each
    python benchmarks/inversion.py --resolution 1024 --device cuda --precision bf16-mixed

Each stage runs ``--timed-steps`` optimizer steps after ``--warmup-steps`` in a real Lightning Trainer (random
config-f generator, random flow of the paper's size); the per-step time is extrapolated to the paper's step counts.
RLS+ refines one image at a time, so its time per image does not depend on the batch size.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import resource
import time
import warnings

import lightning as L
import torch

from rls_lightning.flow.maf import FlowConfig, LatentFlow
from rls_lightning.inversion.latent_search import LatentSearch
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings, SearchSettings
from rls_lightning.stylegan import Generator, GeneratorConfig


class StepTimer(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._start = warmup, [], None

    def _sync(self, pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._sync(pl_module)
        if trainer.global_step > self.warmup:
            self.times.append(time.perf_counter() - self._start)


def time_stage(module, steps: int, warmup: int, accelerator: str, precision: str) -> float:
    timer = StepTimer(warmup)
    L.Trainer(accelerator=accelerator, devices=1, precision=precision, max_steps=steps + warmup,
              max_epochs=steps + warmup, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, callbacks=[timer]).fit(module)
    return sum(timer.times) / len(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--factor", type=int, default=8, help="super-resolution factor of the LR input")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="32-true", help="32-true or bf16-mixed")
    parser.add_argument("--fused-modconv", action="store_true", help="grouped (official) modulated convs")
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--timed-steps", type=int, default=2)
    parser.add_argument("--flow-hidden", type=int, default=1024)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    accelerator = "gpu" if args.device.startswith("cuda") else "cpu"

    G = Generator(GeneratorConfig(img_resolution=args.resolution)).eval()
    G.synthesis.fused_modconv = args.fused_modconv
    flow = LatentFlow(FlowConfig(features=G.w_dim, hidden_features=args.flow_hidden)).eval()
    lr_size = args.resolution // args.factor
    search, refine = SearchSettings(), RefineSettings(early_stopping_patience=None)
    if accelerator == "gpu":
        torch.cuda.reset_peak_memory_stats()
    rows = []
    for batch in args.batch_sizes:
        targets = torch.rand(batch, 3, lr_size, lr_size) * 2 - 1
        init = torch.randn(batch, G.num_ws, G.w_dim) * 0.1
        rls_step = time_stage(LatentSearch(G, flow, targets, args.factor, search, init), args.timed_steps,
                              args.warmup_steps, accelerator, args.precision)
        rows.append({"stage": "rls", "batch": batch, "seconds_per_step": round(rls_step, 4),
                     "seconds_per_image": round(rls_step * search.steps / batch, 2)})
    refine_step = time_stage(Refinement(G, targets[:1], args.factor, init[:1], list(G.noise_inputs), refine),
                             args.timed_steps, args.warmup_steps, accelerator, args.precision)
    rows.append({"stage": "rls+", "batch": 1, "seconds_per_step": round(refine_step, 4),
                 "seconds_per_image": round(refine_step * refine.steps, 2)})
    print(json.dumps({
        "benchmark": "inversion",
        "device": torch.cuda.get_device_name() if accelerator == "gpu" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "resolution": args.resolution, "factor": args.factor, "precision": args.precision,
        "fused_modconv": args.fused_modconv,
        "steps": {"rls": search.steps, "rls+": refine.steps},
        "timed_steps_per_measurement": args.timed_steps,
        "results": rows,
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if accelerator == "gpu" else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
