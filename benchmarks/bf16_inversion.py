"""How far ``--precision bf16-mixed`` moves the inversion from float32, and what it saves; prints one JSON line.

    python benchmarks/bf16_inversion.py --generator checkpoints/demo64/generator.pt \
        --flow checkpoints/demo64/flow.pt --factor 8
    python benchmarks/bf16_inversion.py --resolution 1024 --images 4          # random config-f weights and flow

Known faces are made by the generator (w = mapping(z), fixed noise), downsampled by ``--factor``, and inverted with
the paper's RLS then RLS+ (early stopping off, so both precisions run the same steps), once in float32 and once in
bf16-mixed from the same start. Reported per precision: mean LR consistency and PSNR against the known HR face,
seconds per step; and between the two: PSNR of the bf16 result against the float32 one.
"""
from __future__ import annotations

import argparse
import logging
import warnings

import torch
from _common import emit, generator_config, peak_memory_mib, reset_peak_memory, untrained_flow
from inversion import time_stage

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.flow.checkpoint import load_flow
from rls_lightning.inversion.callbacks import L1BallProjection
from rls_lightning.inversion.latent_search import LatentSearch
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings, SearchSettings
from rls_lightning.stylegan import Generator, load_generator


def flow_free_mean(G: Generator) -> torch.Tensor:
    """The mean of 100,000 mapped w (paper sec. 4's initialisation), without a flow file."""
    with torch.no_grad():
        return G.mapping(torch.randn(100_000, G.z_dim, generator=torch.Generator().manual_seed(1))).mean(0)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per image, images in [-1, 1] (peak-to-peak 2)."""
    return 10 * torch.log10(4.0 / (a - b).square().flatten(1).mean(1).clamp_min(1e-12))


def invert(G, flow, w_init, targets, factor, precision, accelerator, search, refine):
    """RLS then RLS+ at ``precision``; returns (images, LR consistency, seconds per step of each stage)."""
    def fit(module, steps, callbacks):  # `steps` in all, the first one untimed
        seconds_per_step = time_stage(module, steps - 1, 1, accelerator, precision, callbacks)
        return module.results(), seconds_per_step

    init = w_init.reshape(1, 1, -1).expand(targets.shape[0], G.num_ws, -1).clone()
    rls, rls_step = fit(LatentSearch(G, flow, targets, factor, search, init), search.steps, [])
    refinement = Refinement(G, targets, factor, rls.ws, rls.noise, refine)
    final, refine_step = fit(refinement, refine.steps, [L1BallProjection(refine.radius(G.w_dim))])
    return final.images, final.lr_l1, rls_step, refine_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", default=None, help="generator file (default: random config-f weights)")
    parser.add_argument("--flow", default=None, help="its flow file (default: a random flow of the paper's size)")
    parser.add_argument("--resolution", type=int, default=1024, help="for random weights")
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rls-steps", type=int, default=SearchSettings.steps)
    parser.add_argument("--refine-steps", type=int, default=RefineSettings.steps)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    accelerator = "gpu" if device.type == "cuda" else "cpu"

    if args.generator:
        G = load_generator(args.generator)
    else:
        torch.manual_seed(args.seed)
        G = Generator(generator_config("config-f", args.resolution)).eval()
    G.synthesis.fused_modconv = False
    if args.flow:
        bundle = load_flow(args.flow, G)
        flow, w_init = bundle.flow, bundle.w_init
    else:
        flow, w_init = untrained_flow(G), flow_free_mean(G)
    z = torch.randn(args.images, G.z_dim, generator=torch.Generator().manual_seed(args.seed + 1))
    with torch.no_grad():
        truth = G.synthesis(G.mapping(z)[:, None].expand(-1, G.num_ws, -1))
    targets = downsample_bicubic(truth, args.factor)
    search = SearchSettings(steps=args.rls_steps)
    refine = RefineSettings(steps=args.refine_steps, early_stopping_patience=None)

    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        reset_peak_memory(device)
        images, lr_l1, rls_step, refine_step = invert(G, flow, w_init, targets, args.factor, precision, accelerator,
                                                      search, refine)
        runs[precision] = {"images": images, "lr_l1": round(float(lr_l1.mean()), 5),
                           "psnr_vs_truth_db": round(float(psnr(images, truth).mean()), 2),
                           "rls_seconds_per_step": round(rls_step, 4),
                           "rls_plus_seconds_per_step": round(refine_step, 4),
                           "peak_memory_mib": peak_memory_mib(device)}
    agreement = psnr(runs["bf16-mixed"]["images"], runs["32-true"]["images"])
    for run in runs.values():
        del run["images"]
    emit("bf16_inversion", device, generator=args.generator or f"random config-f {args.resolution}px",
         factor=args.factor, images=args.images, steps={"rls": search.steps, "rls+": refine.steps},
         runs=runs, bf16_vs_float32_psnr_db={"mean": round(float(agreement.mean()), 2),
                                             "min": round(float(agreement.min()), 2)})


if __name__ == "__main__":
    main()
