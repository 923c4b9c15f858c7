"""Training throughput of the flow prior (mapping + MAF step), and the share of time spent in the mapping.

    python benchmarks/flow_throughput.py --w-dim 512 --batch-size 1024 --device cuda --precision bf16

Prints JSON: samples per second of full training steps (draw z, map, flow forward/backward, Adam), time per step
split into sampling (z + mapping) and flow (forward, backward, optimizer), and peak memory.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import time

import torch

from rls_lightning.flow.maf import FlowConfig, LatentFlow
from rls_lightning.stylegan import Generator, GeneratorConfig


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--w-dim", type=int, default=512, help="latent size (FFHQ: 512)")
    parser.add_argument("--mapping-layers", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 warm-up steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32", help="bf16 = autocast bf16-mixed")
    args = parser.parse_args()

    device = torch.device(args.device)
    G = Generator(GeneratorConfig(img_resolution=4, z_dim=args.w_dim, w_dim=args.w_dim,
                                  mapping_layers=args.mapping_layers)).to(device)
    mapping = G.mapping.eval().requires_grad_(False)
    flow = LatentFlow(FlowConfig(features=args.w_dim, num_blocks=args.blocks, hidden_features=args.hidden)).to(device)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-4)

    def autocast():
        if args.precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    sample_time = flow_time = 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for step in range(args.steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), autocast():
            z = torch.randn(args.batch_size, args.w_dim, device=device)
            w = mapping(z)
        _sync(device)
        t1 = time.perf_counter()
        with autocast():
            loss = -flow.log_prob(w).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        t2 = time.perf_counter()
        if step >= 2:
            sample_time += t1 - t0
            flow_time += t2 - t1
    total = sample_time + flow_time
    print(json.dumps({
        "benchmark": "flow_throughput",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "precision": args.precision,
        "w_dim": args.w_dim, "blocks": args.blocks, "hidden": args.hidden, "batch_size": args.batch_size,
        "flow_parameters_millions": round(sum(p.numel() for p in flow.parameters()) / 1e6, 2),
        "samples_per_second": round(args.steps * args.batch_size / total, 1),
        "seconds_per_step": round(total / args.steps, 4),
        "mapping_share": round(sample_time / total, 4),
        "flow_share": round(flow_time / total, 4),
        "peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, indent=2))


if __name__ == "__main__":
    main()
