"""What an inversion step costs beyond the generator it drives; prints one JSON line (issue 24's ratios).

    python benchmarks/step_overhead.py                       # demo model, 64 px, x8, float32, CPU
    python benchmarks/step_overhead.py --profile 5           # also where a step's time goes (torch profiler)

It times one optimizer step of the RLS and RLS+ stages as ``InversionJob`` runs them (a real Trainer, one epoch
of steps, the l1-ball projection and early-stopping callbacks for RLS+), and, before every step, inside the same
loop, one bare generator forward+backward as ``generator_speed.py`` runs it (``rls``: frozen weights, gradients for
W+ and the noise maps; ``rls+``: one set of synthesis weights per image through ``functional_call``, with
gradients). Each step is thus paired with a generator pass run a moment before it: the 2-core build machine's
speed drifts by a third from one minute to the next, which unpaired timings turn into ratio noise. A step counts
from the end of its paired generator pass to the start of the next step (the loop's bookkeeping included); the
ratios are of medians. The generator runs unfused modulated convolutions, ``invert.py``'s default.

It reports ``rls_step_over_generator`` (RLS step at batch 1 / bare ``rls`` forward+backward at batch 1),
``rls_batch8_per_image_over_batch1`` and ``rls_plus_step_over_generator`` (RLS+ step at batch 1 / bare ``rls+``),
for each of ``--runs`` runs, with ``generator_rls_batch8_per_image_over_batch1``, the bare generator's own batching
gain: the loop's ratio differs from it only by how its own per-step cost spreads over a batch. Random networks of
the demo model's size; the flow of the paper's shape. ``--precision bf16-mixed`` runs the stages and the paired
generator passes under bf16 autocast.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning as L
import torch
from _common import emit, generator_config, untrained_flow
from generator_speed import workload

from rls_lightning.inversion.callbacks import L1BallProjection, PerImageEarlyStopping
from rls_lightning.inversion.latent_search import LatentSearch
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings, SearchSettings
from rls_lightning.stylegan import Generator


def stage_module(stage: str, G: Generator, flow, batch: int, factor: int):
    generator = torch.Generator().manual_seed(batch)
    lr_size = G.img_resolution // factor
    targets = torch.rand(batch, 3, lr_size, lr_size, generator=generator) * 2 - 1
    # as inversion.py: a random network has no w_avg
    init = torch.randn(batch, G.num_ws, G.w_dim, generator=generator) * 0.1
    if stage == "rls":
        return LatentSearch(G, flow, targets, factor, SearchSettings(), init), []
    settings = RefineSettings(early_stopping_patience=10_000)  # the callback's cost is counted, it never stops
    return (Refinement(G, targets, factor, init, list(G.noise_inputs), settings),
            [L1BallProjection(settings.radius(G.w_dim)), PerImageEarlyStopping(settings.early_stopping_patience)])


class PairedTimer(L.Callback):
    """Before every step after ``warmup``: one call of ``bare`` (timed), then the step, timed from the end of that
    call to the start of the next step (or the end of training)."""

    def __init__(self, bare, warmup: int) -> None:
        self.bare, self.warmup = bare, warmup
        self.bare_times, self.step_times, self._start = [], [], None

    def _lap(self) -> None:
        if self._start is not None:
            self.step_times.append(time.perf_counter() - self._start)
            self._start = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._lap()
        if trainer.global_step >= self.warmup:
            start = time.perf_counter()
            self.bare()
            self.bare_times.append(time.perf_counter() - start)
            self._start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self._lap()


def run_stage(stage: str, G: Generator, flow, batch: int, factor: int, steps: int, warmup: int,
              bare=None, precision: str = "32-true") -> PairedTimer:
    """``steps + warmup`` steps of ``stage`` in a Trainer as ``InversionJob`` sets it up; with ``bare``, each timed
    step is paired with one call of it."""
    module, callbacks = stage_module(stage, G, flow, batch, factor)
    timer = PairedTimer(bare or (lambda: None), warmup)
    L.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=steps + warmup, max_epochs=1,
              logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              callbacks=[timer, *callbacks]).fit(module)
    return timer


def paired_medians(stage: str, G: Generator, flow, batch: int, factor: int, steps: int, warmup: int,
                   mode: str, precision: str) -> tuple[float, float]:
    """``(median step seconds, median seconds of the paired bare generator pass)`` at ``batch``, both in
    ``precision`` (``32-true`` or ``bf16-mixed``: autocast for the generator pass too)."""
    bare = workload(G, batch, mode, torch.device("cpu"), "bf16" if precision == "bf16-mixed" else "32")
    timer = run_stage(stage, G, flow, batch, factor, steps, warmup, bare=bare, precision=precision)
    return statistics.median(timer.step_times), statistics.median(timer.bare_times)


def profile(G: Generator, flow, factor: int, steps: int) -> list[dict]:
    """The RLS stage's ops over ``steps`` steps at batch 1, by self CPU time (top 15)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        run_stage("rls", G, flow, 1, factor, steps, 2)
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    return [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4), "calls": e.count} for e in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--timed-steps", type=int, default=20, help="timed steps per stage, each paired")
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true",
                        help="of the stages and of the paired generator pass (issue 24 measures 32-true)")
    parser.add_argument("--profile", type=int, default=0, help="also profile this many RLS steps")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = torch.device("cpu")
    G = Generator(generator_config("demo", args.resolution)).eval().requires_grad_(False)
    G.synthesis.fused_modconv = False  # invert.py's default (--fused-modconv off), as generator_speed.py runs it
    flow = untrained_flow(G)
    runs = []
    for _ in range(args.runs):
        timed = dict(factor=args.factor, steps=args.timed_steps, warmup=args.warmup_steps, precision=args.precision)
        rls1, bare1 = paired_medians("rls", G, flow, 1, mode="rls", **timed)
        rls8, bare8 = paired_medians("rls", G, flow, 8, mode="rls", **timed)
        plus1, bare_plus1 = paired_medians("rls+", G, flow, 1, mode="rls+", **timed)
        runs.append({"generator_rls_seconds": round(bare1, 5), "generator_rls_batch8_seconds": round(bare8, 5),
                     "generator_rls_plus_seconds": round(bare_plus1, 5), "rls_step_batch1": round(rls1, 5),
                     "rls_step_batch8": round(rls8, 5), "rls_plus_step_batch1": round(plus1, 5),
                     "rls_step_over_generator": round(rls1 / bare1, 3),
                     "rls_batch8_step_over_generator": round(rls8 / bare8, 3),
                     "rls_batch8_per_image_over_batch1": round(rls8 / 8 / rls1, 3),
                     # the same ratio for the bare generator: the loop batches better only by spreading its own
                     # per-step cost over more images
                     "generator_rls_batch8_per_image_over_batch1": round(bare8 / 8 / bare1, 3),
                     "rls_plus_step_over_generator": round(plus1 / bare_plus1, 3)})
    extra = {"profile_rls_batch1": profile(G, flow, args.factor, args.profile)} if args.profile else {}
    emit("step_overhead", device, preset="demo", resolution=args.resolution, factor=args.factor,
         precision=args.precision, fused_modconv=False, timed_steps=args.timed_steps, timing="paired", runs=runs,
         **extra)


if __name__ == "__main__":
    main()
