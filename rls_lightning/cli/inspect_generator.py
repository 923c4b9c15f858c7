"""Check that a StyleGAN2 checkpoint loads, print what it is, and render a grid of samples.

    python -m rls_lightning.cli.inspect_generator ffhq.pkl --out samples.png --seeds 0 1 2 3 --truncation 0.7
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from rls_lightning.image_io import image_grid, save_png_atomic
from rls_lightning.stylegan import CheckpointError, load_generator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rls_lightning.cli.inspect_generator", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path,
                        help="generator file: rls-lightning .pt, rosinality .pt ({'g_ema', 'latent_avg'}) or "
                             "NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 .pkl (read without running "
                             "code from the pickle)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write a PNG grid of samples here (default: no image)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)),
                        help="one sample per seed; z ~ N(0, I) drawn with torch.Generator(seed) (default: 0..7)")
    parser.add_argument("--truncation", type=float, default=1.0,
                        help="truncation psi towards w_avg (default 1.0 = none; needs w_avg in the file)")
    parser.add_argument("--noise-mode", choices=["const", "random", "none"], default="const",
                        help="per-layer noise: the stored constants, fresh random, or zero (default: const)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda if available, else cpu)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    try:
        G = load_generator(args.checkpoint, device=args.device)
    except CheckpointError as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    cfg = G.config
    table = Table(title=str(args.checkpoint), show_header=False)
    rows = [
        ("resolution", f"{cfg.img_resolution} px, {cfg.img_channels} channels"),
        ("num_ws (W+ rows)", str(cfg.num_ws)),
        ("noise inputs", f"{len(G.noise_inputs)} ({', '.join(str(n.shape[-1]) for n in G.noise_inputs)})"),
        ("z_dim / w_dim", f"{cfg.z_dim} / {cfg.w_dim}"),
        ("mapping layers", f"{cfg.mapping_layers} (lr multiplier {cfg.mapping_lr_multiplier})"),
        ("channels", ", ".join(f"{r}:{cfg.channels(r)}" for r in cfg.block_resolutions)),
        ("conv_clamp", str(cfg.conv_clamp)),
        ("w_avg", "stored" if G.w_avg is not None else "absent"),
        ("parameters", f"{sum(p.numel() for p in G.parameters()) / 1e6:.2f} M"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)

    if args.out is not None:
        if args.truncation != 1.0 and G.w_avg is None:
            console.print(f"[red]error:[/red] {args.checkpoint}: --truncation needs w_avg, which this file lacks")
            return 2
        z = torch.stack([torch.randn(cfg.z_dim, generator=torch.Generator().manual_seed(s)) for s in args.seeds])
        with torch.no_grad():
            ws = G.mapping(z.to(args.device), truncation_psi=args.truncation)
            images = G.synthesis(ws.unsqueeze(1).expand(-1, G.num_ws, -1), noise_mode=args.noise_mode)
        save_png_atomic(image_grid(images, columns=min(len(args.seeds), 8)), args.out)
        console.print(f"samples for seeds {args.seeds} written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
