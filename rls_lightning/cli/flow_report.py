"""Gaussianization report (paper section 4, "Quality of the Gaussianization process", Figure 3).

For fresh samples z ~ N(0, I) and w = G.mapping(z), compare the squared norms of
* z itself (the reference: exactly chi^2 with z_dim degrees of freedom),
* F(w), our flow's Gaussianization,
* PULSE's transform: LeakyReLU with negative slope 5 applied to w (undoing the mapping's last activation), then
  standardised per dimension with a mean and std estimated on separate samples,
against the chi^2_d density. Writes ``<prefix>.png`` (histograms) and ``<prefix>.json`` (mean, std and the
Kolmogorov-Smirnov distance to chi^2_d of each).

    python -m rls_lightning.cli.flow_report --generator G.pt --flow flow.pt --out runs/flow/report
"""
from __future__ import annotations

from pathlib import Path

from jsonargparse import ArgumentParser

from rls_lightning.cli.arguments import ParagraphHelpFormatter, parse_args
from rls_lightning.cli.errors import guarded


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m rls_lightning.cli.flow_report", description=__doc__, default_env=False,
                            formatter_class=ParagraphHelpFormatter)
    parser.add_argument("--generator", type=Path, required=True, help="StyleGAN2 checkpoint the flow was trained on")
    parser.add_argument("--flow", type=Path, required=True, help="flow checkpoint written by train_flow.py")
    parser.add_argument("--out", type=Path, required=True, help="output prefix: writes PREFIX.png and PREFIX.json")
    parser.add_argument("--samples", type=int, default=5000, help="fresh samples (paper: 5000)")
    parser.add_argument("--pulse-stats-samples", type=int, default=100_000,
                        help="separate samples for PULSE's mean/std (PULSE itself uses 1,000,000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the report's own random streams")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when a GPU is visible)")
    parser.add_argument("--force", action="store_true", help="skip the generator fingerprint check")
    return parser


@guarded
def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)

    import torch

    from rls_lightning.flow.checkpoint import FlowCheckpointError, load_flow
    from rls_lightning.flow.report import gaussianization_report, write_report
    from rls_lightning.stylegan import CheckpointError, load_generator

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        G = load_generator(args.generator, device=args.device)
        bundle = load_flow(args.flow, G, force=args.force, device=args.device)
    except (CheckpointError, FlowCheckpointError) as err:
        print(f"error: {err}")
        return 2
    report = gaussianization_report(G.mapping, G.z_dim, bundle.flow, num_samples=args.samples,
                                    pulse_stats_samples=args.pulse_stats_samples, seed=args.seed, device=args.device)
    json_path, png_path = write_report(report, args.out)
    for key, numbers in report["squared_norms"].items():
        print(f"{key:>5}: mean {numbers['mean']:9.2f}  std {numbers['std']:8.2f}  "
              f"KS to chi2 {numbers['ks_to_chi2']:.4f}")
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
