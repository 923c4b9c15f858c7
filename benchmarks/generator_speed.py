"""Forward and forward+backward time of a StyleGAN2 synthesis network; prints JSON.

    python benchmarks/generator_speed.py --resolution 256 --batch-sizes 1 4 --device cpu

The backward pass is taken with respect to ws, noise and all weights, as in RLS+ (paper Eq. 7).
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import torch

from rls_lightning.stylegan import Generator, GeneratorConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device: torch.device, repeats: int) -> float:
    fn()  # warm-up (allocations, cuDNN autotuning)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=256, help="output side in pixels (power of two)")
    parser.add_argument("--channel-base", type=int, default=32768, help="config-f: 32768 (rosinality cm=2)")
    parser.add_argument("--channel-max", type=int, default=512)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    config = GeneratorConfig(img_resolution=args.resolution, channel_base=args.channel_base,
                             channel_max=args.channel_max)
    G = Generator(config).eval().to(device)
    results = []
    for fused in (True, False):
        G.synthesis.fused_modconv = fused
        for batch in args.batch_sizes:
            ws = torch.randn(batch, G.num_ws, G.w_dim, device=device)

            def forward():
                with torch.no_grad():
                    G.synthesis(ws)

            def forward_backward():
                ws_var = ws.clone().requires_grad_(True)
                noise = [n.clone().requires_grad_(True) for n in G.noise_inputs]
                G.synthesis(ws_var, noise=noise).square().mean().backward()
                G.zero_grad(set_to_none=True)

            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            results.append({
                "fused_modconv": fused,
                "batch": batch,
                "forward_s": round(time_call(forward, device, args.repeats), 4),
                "forward_backward_s": round(time_call(forward_backward, device, args.repeats), 4),
                "peak_gpu_mib": (round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                                 if device.type == "cuda" else None),
            })
    print(json.dumps({
        "benchmark": "generator_speed",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "resolution": args.resolution,
        "parameters_millions": round(sum(p.numel() for p in G.parameters()) / 1e6, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
