"""Generator forward+backward throughput versus batch size and resolution, and how close it is to the machine's
limit; prints one JSON line.

    python benchmarks/generator_speed.py --resolutions 256 1024 --batch-sizes 1 4 8 16 --precision bf16
    python benchmarks/generator_speed.py --preset demo --resolutions 64 --batch-sizes 1 8 --device cpu

Two workloads, as the inversion runs them:

* ``rls``: weights shared by the batch and frozen; gradients only for W+ and the noise maps (RLS, Eq. 6).
* ``rls+``: one set of synthesis weights per image, with gradients for them too (batched RLS+, Eq. 7), passed
  through ``torch.func.functional_call`` as ``Refinement`` does.

FLOPs are counted by ``torch.utils.flop_counter`` on one image (per-image weights make a batch exactly B times
that) and divided by the measured time; ``matmul_tflops`` is a large square matmul timed in the same run, the
practical ceiling of the device for that precision.
"""
from __future__ import annotations

import argparse
import contextlib

import torch
from _common import emit, generator_config, matmul_flops, peak_memory_mib, reset_peak_memory, time_call
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

from rls_lightning.stylegan import Generator


def workload(G: Generator, batch: int, mode: str, device: torch.device, precision: str):
    """A closure running one forward+backward of ``mode`` at ``batch``."""
    ws = torch.randn(batch, G.num_ws, G.w_dim, device=device, requires_grad=True)
    noise = [n.detach().expand(batch, 1, *n.shape).clone().requires_grad_(True) for n in G.noise_inputs]
    weights = {name: p.detach().unsqueeze(0).repeat(batch, *[1] * p.ndim).requires_grad_(True)
               for name, p in G.synthesis.named_parameters()} if mode == "rls+" else None
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def step() -> None:
        with autocast:
            if weights is None:
                image = G.synthesis(ws, noise=noise)
            else:
                image = functional_call(G.synthesis, weights, (ws,), {"noise": noise})
        image.float().square().mean().backward()
        for tensor in (ws, *noise, *(weights or {}).values()):
            tensor.grad = None

    return step


def flops_per_image(G: Generator, mode: str, device: torch.device) -> int:
    step = workload(G, 1, mode, device, "32")
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["config-f", "demo"], default="config-f", help="channel layout")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256], help="output sides (powers of two)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--modes", nargs="+", choices=["rls", "rls+"], default=["rls", "rls+"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["32", "bf16"], default="32", help="bf16: autocast bf16-mixed")
    parser.add_argument("--fused-modconv", action="store_true",
                        help="shared weights through grouped convolutions (the official inference path)")
    parser.add_argument("--channels-last", action="store_true", help="NHWC activations in the generator")
    parser.add_argument("--compile", action="store_true", help="torch.compile the synthesis network")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    rows = []
    for resolution in args.resolutions:
        G = Generator(generator_config(args.preset, resolution)).eval().requires_grad_(False).to(device)
        G.synthesis.fused_modconv = args.fused_modconv
        G.synthesis.channels_last = args.channels_last
        flops = {mode: flops_per_image(G, mode, device) for mode in args.modes}
        if args.compile:
            G.synthesis = torch.compile(G.synthesis)
        for mode in args.modes:
            for batch in args.batch_sizes:
                reset_peak_memory(device)
                try:
                    seconds = time_call(workload(G, batch, mode, device, args.precision), device, args.repeats)
                except torch.OutOfMemoryError:
                    rows.append({"resolution": resolution, "mode": mode, "batch": batch, "error": "out of memory"})
                    torch.cuda.empty_cache()
                    continue
                rows.append({"resolution": resolution, "mode": mode, "batch": batch,
                             "forward_backward_s": round(seconds, 5),
                             "images_per_s": round(batch / seconds, 2),
                             "gflop_per_image": round(flops[mode] / 1e9, 2),
                             "achieved_tflops": round(flops[mode] * batch / seconds / 1e12, 3),
                             "peak_memory_mib": peak_memory_mib(device)})
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    emit("generator_speed", device, preset=args.preset, precision=args.precision,
         fused_modconv=args.fused_modconv, channels_last=args.channels_last, compiled=args.compile,
         matmul_tflops=round(matmul_flops(device, dtype) / 1e12, 3), results=rows)


if __name__ == "__main__":
    main()
