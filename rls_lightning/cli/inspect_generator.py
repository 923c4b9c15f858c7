"""Check that a StyleGAN2 checkpoint loads, print what it is, and render a grid of samples.

    python -m rls_lightning.cli.inspect_generator ffhq.pkl --out samples.png --seeds 0 1 2 3 --truncation 0.7
"""
from __future__ import annotations

from pathlib import Path

from jsonargparse import ArgumentParser

from rls_lightning.cli.arguments import (ParagraphHelpFormatter, check_device, check_input_file, check_output_file,
                                         parse_args)
from rls_lightning.cli.errors import UsageError, check_float, check_int, guarded
from rls_lightning.weights import resolve_generator


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m rls_lightning.cli.inspect_generator", description=__doc__,
                            default_env=False, formatter_class=ParagraphHelpFormatter)
    parser.add_argument("checkpoint", type=Path,
                        help="generator file: rls-lightning .pt, rosinality .pt ({'g_ema', 'latent_avg'}) or "
                             "NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 .pkl (read without running "
                             "code from the pickle), or a registry name such as ffhq-1024 (downloaded once, "
                             "verified)")
    parser.add_argument("--out", type=Path | None, default=None,
                        help="write a PNG grid of samples here (default: no image)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)),
                        help="one sample per seed; z ~ N(0, I) drawn with torch.Generator(seed) (default: 0..7)")
    parser.add_argument("--truncation", type=float, default=1.0,
                        help="truncation psi towards w_avg (default 1.0 = none; needs w_avg in the file)")
    parser.add_argument("--noise-mode", choices=["const", "random", "none"], default="const",
                        help="per-layer noise: the stored constants, fresh random, or zero (default: const)")
    parser.add_argument("--device", default="auto",
                        help="torch device, or auto: cuda if available, else cpu (default)")
    return parser


MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed's range
MAX_SAMPLES = 1024  # one grid: more is a typo (a --seeds range), not a picture anyone looks at


def validate_args(args) -> None:
    """Every option checked before the generator is loaded (one line naming option, value and what is
    allowed)."""
    args.checkpoint = resolve_generator(args.checkpoint, "checkpoint")
    check_input_file("checkpoint", args.checkpoint)
    for seed in args.seeds:
        check_int("--seeds", seed, 0, MAX_SEED)
    if len(args.seeds) > MAX_SAMPLES:
        raise UsageError(f"--seeds: {len(args.seeds)} seeds; at most {MAX_SAMPLES} in one grid")
    check_float("--truncation", args.truncation)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_device("--device", args.device)
    if args.out is not None:
        check_output_file("--out", args.out, not_equal={"checkpoint": args.checkpoint})


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    validate_args(args)

    import torch  # only now that the options are good: --help and a typo cost no torch
    from rich.console import Console
    from rich.table import Table

    from rls_lightning.image_io import image_grid, save_png_atomic
    from rls_lightning.stylegan import load_generator

    console = Console()
    G = load_generator(args.checkpoint, device=args.device)
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
            raise UsageError(f"--truncation {args.truncation}: needs w_avg, which {args.checkpoint} lacks "
                             "(use 1.0)")
        z = torch.stack([torch.randn(cfg.z_dim, generator=torch.Generator().manual_seed(s)) for s in args.seeds])
        with torch.no_grad():
            ws = G.mapping(z.to(args.device), truncation_psi=args.truncation)
            images = G.synthesis(ws.unsqueeze(1).expand(-1, G.num_ws, -1), noise_mode=args.noise_mode)
        save_png_atomic(image_grid(images, columns=min(len(args.seeds), 8)), args.out)
        console.print(f"samples for seeds {args.seeds} written to {args.out}")
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
