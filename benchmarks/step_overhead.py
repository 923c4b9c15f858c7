"""What an inversion step costs beyond the generator it drives; prints one JSON line (issue 24's ratios).

    python benchmarks/step_overhead.py                       # demo model, 64 px, x8, float32, CPU
    python benchmarks/step_overhead.py --profile 5           # also where a step's time goes (torch profiler)

In one process, alternating so that both sides see the same machine state, it times:

* the bare generator forward+backward as ``generator_speed.py`` runs it (``rls``: frozen weights, gradients for W+
  and the noise maps; ``rls+``: one set of synthesis weights per image through ``functional_call``, with gradients);
* one optimizer step of the RLS and RLS+ stages as ``InversionJob`` runs them (a real Trainer, one epoch of steps,
  the l1-ball projection and early-stopping callbacks for RLS+), from one step's start to the next;

and reports ``rls_step_over_generator`` (RLS step at batch 1 / bare ``rls`` forward+backward at batch 1),
``rls_batch8_per_image_over_batch1`` and ``rls_plus_step_over_generator`` (RLS+ step at batch 1 / bare ``rls+``),
for each of ``--runs`` runs, with ``generator_rls_batch8_per_image_over_batch1``, the bare generator's own batching
gain, which bounds the second ratio from below. Random networks of the demo model's size; the flow of the paper's shape.
"""
from __future__ import annotations

import argparse
import logging
import warnings

import torch
from _common import emit, generator_config, time_call, untrained_flow
from generator_speed import workload
from inversion import time_stage

from rls_lightning.inversion.callbacks import L1BallProjection, PerImageEarlyStopping
from rls_lightning.inversion.latent_search import LatentSearch
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings, SearchSettings
from rls_lightning.stylegan import Generator


def stage_module(stage: str, G: Generator, flow, batch: int, factor: int):
    generator = torch.Generator().manual_seed(batch)
    lr_size = G.img_resolution // factor
    targets = torch.rand(batch, 3, lr_size, lr_size, generator=generator) * 2 - 1
    init = torch.randn(batch, G.num_ws, G.w_dim, generator=generator) * 0.1  # as inversion.py: a random network has no w_avg
    if stage == "rls":
        return LatentSearch(G, flow, targets, factor, SearchSettings(), init), []
    settings = RefineSettings(early_stopping_patience=10_000)  # the callback's cost is counted, it never stops
    return (Refinement(G, targets, factor, init, list(G.noise_inputs), settings),
            [L1BallProjection(settings.radius(G.w_dim)), PerImageEarlyStopping(settings.early_stopping_patience)])


def step_seconds(stage: str, G: Generator, flow, batch: int, factor: int, steps: int, warmup: int) -> float:
    module, callbacks = stage_module(stage, G, flow, batch, factor)
    return time_stage(module, steps, warmup, "cpu", "32-true", callbacks)


def profile(G: Generator, flow, factor: int, steps: int) -> list[dict]:
    """The RLS stage's ops over ``steps`` steps at batch 1, by self CPU time (top 15)."""
    module, callbacks = stage_module("rls", G, flow, 1, factor)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        time_stage(module, steps, 2, "cpu", "32-true", callbacks)
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    return [{"op": e.key, "self_cpu_share": round(e.self_cpu_time_total / total, 4), "calls": e.count} for e in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--timed-steps", type=int, default=10)
    parser.add_argument("--warmup-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10, help="bare generator calls timed")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", type=int, default=0, help="also profile this many RLS steps")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = torch.device("cpu")
    G = Generator(generator_config("demo", args.resolution)).eval().requires_grad_(False)
    flow = untrained_flow(G)
    runs = []
    for _ in range(args.runs):
        bare = {mode: time_call(workload(G, 1, mode, device, "32"), device, args.repeats, warmup=2)
                for mode in ("rls", "rls+")}
        bare8 = time_call(workload(G, 8, "rls", device, "32"), device, max(args.repeats // 4, 2), warmup=1)
        rls1 = step_seconds("rls", G, flow, 1, args.factor, args.timed_steps, args.warmup_steps)
        rls8 = step_seconds("rls", G, flow, 8, args.factor, args.timed_steps, args.warmup_steps)
        plus1 = step_seconds("rls+", G, flow, 1, args.factor, args.timed_steps, args.warmup_steps)
        runs.append({"generator_rls_seconds": round(bare["rls"], 5), "generator_rls_plus_seconds":
                     round(bare["rls+"], 5), "rls_step_batch1": round(rls1, 5), "rls_step_batch8": round(rls8, 5),
                     "rls_plus_step_batch1": round(plus1, 5),
                     "rls_step_over_generator": round(rls1 / bare["rls"], 3),
                     "rls_batch8_per_image_over_batch1": round(rls8 / 8 / rls1, 3),
                     # the same ratio for the bare generator: no loop can batch better than the network it drives
                     "generator_rls_batch8_per_image_over_batch1": round(bare8 / 8 / bare["rls"], 3),
                     "rls_plus_step_over_generator": round(plus1 / bare["rls+"], 3)})
    extra = {"profile_rls_batch1": profile(G, flow, args.factor, args.profile)} if args.profile else {}
    emit("step_overhead", device, preset="demo", resolution=args.resolution, factor=args.factor,
         precision="32-true", timed_steps=args.timed_steps, runs=runs, **extra)


if __name__ == "__main__":
    main()
