"""Training throughput of the flow prior (mapping + MAF step), and the share of time spent in the mapping.

    python benchmarks/flow_throughput.py --w-dim 512 --batch-size 1024 --device cuda --precision bf16

Prints one JSON line: samples per second of full training steps (draw z, map, flow forward/backward, Adam), time per
step split into sampling (z + mapping) and flow (forward, backward, optimizer), and peak memory.
"""
from __future__ import annotations

import argparse
import contextlib
import time

import torch
from _common import emit, peak_memory_mib, reset_peak_memory, sync

from rls_lightning.flow.maf import FlowConfig, LatentFlow
from rls_lightning.stylegan import Generator, GeneratorConfig


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
    reset_peak_memory(device)
    for step in range(args.steps + 2):
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), autocast():
            z = torch.randn(args.batch_size, args.w_dim, device=device)
            w = mapping(z)
        sync(device)
        t1 = time.perf_counter()
        with autocast():
            loss = -flow.log_prob(w).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        t2 = time.perf_counter()
        if step >= 2:
            sample_time += t1 - t0
            flow_time += t2 - t1
    total = sample_time + flow_time
    emit("flow_throughput", device, precision=args.precision, w_dim=args.w_dim, blocks=args.blocks,
         hidden=args.hidden, batch_size=args.batch_size,
         flow_parameters_millions=round(sum(p.numel() for p in flow.parameters()) / 1e6, 2),
         samples_per_second=round(args.steps * args.batch_size / total, 1),
         seconds_per_step=round(total / args.steps, 4), mapping_share=round(sample_time / total, 4),
         flow_share=round(flow_time / total, 4), peak_memory_mib=peak_memory_mib(device))


if __name__ == "__main__":
    main()
