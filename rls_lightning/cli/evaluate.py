"""Evaluate super-resolved images against the ground truth with the paper's metrics (section 4, Tables 1-5).

    python -m rls_lightning.cli.evaluate --sr-dir celeba_lr16_rls+ --hr-dir celeba_hr --lr-dir celeba_lr16 \
        --weights-dir ~/weights

Pairs files by name stem (``--sr-suffix _rls`` evaluates the RLS anchors ``<stem>_rls.png`` instead). Per image:
PSNR, SSIM, MS-SSIM (images over 160 px), LPIPS (v0.1, AlexNet), identity similarity (cosine of FaceNet VGGFace2
embeddings; the paper used CurricularFace), NIQE (images of at least 192 px), and LR consistency when --lr-dir is
given. Per set: FID and KID.

Protocol (written into metrics.json, since papers differ): FID/KID use torch-fidelity's FID Inception (the
2015-12-05 TF weights of pytorch-fid / torch-fidelity, the networks behind the FID of the RLS paper, PULSE, BRGM
and GLEAN), uint8 RGB resized to 299 px by torch-fidelity's own bilinear resize, the HR images of the evaluated
pairs as the reference set. PSNR, SSIM and MS-SSIM are computed on --channels: y (default, the SR convention:
BT.601 luma as MATLAB rgb2ycbcr), rgb, or gray (MATLAB rgb2gray, what pyiqa's official SSIM / MS-SSIM scores
used). SSIM and MS-SSIM follow Wang's MATLAB scripts. NIQE uses the NIQE authors' pristine model, shipped with the
package (scripts/calibrate_metrics.py compares every metric here with the official MATLAB scores).

Pretrained networks (FID Inception, AlexNet, FaceNet) are registry files (python -m rls_lightning.cli.weights list):
looked for in --weights-dir and the torch hub cache, downloaded once and verified when missing. With --offline
(or RLS_OFFLINE=1) or without network, each metric that cannot run is skipped with one line naming the file, its
URL and where to put it; every other metric is still computed. Writes a table on screen, metrics.json (means, set
metrics, protocol, notes) and metrics.csv (one row per image) into --out-dir (default: the SR folder).

Images are read by one decoder (``image_io.read_image``): 16-bit grayscale and 48-bit RGB PNGs at full precision,
float images when every pixel is finite and in [0, 1]. A pair with a file that cannot be read, with sizes that
differ, or smaller than SSIM's 11x11 window, is skipped with a note naming the file; so is a stem that a folder
holds twice (a.png and a.jpg: which one is meant is unknown). The others are still scored, and metrics.json says
how many pairs were scored ("pairs") and skipped ("skipped"). Metrics with a minimum size (MS-SSIM, LPIPS, NIQE)
are left out, with a note, for smaller images. Conversions (grayscale replicated, alpha dropped,
EXIF orientation applied, ...) are listed in the notes.

Non-finite values: the PSNR of an SR image identical to its HR image is +infinity, and a metric can be undefined
(NaN, e.g. NIQE of a flat image). They are shown as inf / nan on screen and in metrics.csv (Python's float()
reads both back), and written as the JSON strings "inf", "-inf" and "nan" in metrics.json, which stays strict
JSON. A mean leaves such values out and a note says how many; when nothing finite is left, the mean is inf if
every value was inf (every image identical), else nan.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from jsonargparse import ArgumentParser

from rls_lightning.cli.arguments import ParagraphHelpFormatter, check_device, check_input_file, parse_args
from rls_lightning.cli.errors import UsageError, check_input_dir, check_int, check_output_dir, guarded
from rls_lightning.metrics.evaluator import (CHANNELS, DEFAULT_CHANNELS, evaluate, format_value, pair_by_stem,
                                             write_results)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m rls_lightning.cli.evaluate", description=__doc__, default_env=False,
                            formatter_class=ParagraphHelpFormatter)
    parser.add_argument("--sr-dir", type=Path, required=True, help="super-resolved images")
    parser.add_argument("--hr-dir", type=Path, required=True, help="ground-truth high-resolution images")
    parser.add_argument("--lr-dir", type=Path | None, default=None, help="the LR inputs, for LR consistency")
    parser.add_argument("--weights-dir", type=Path | None, default=None,
                        help="folder searched first for the feature networks' files and downloaded into (default: "
                             "the torch hub cache)")
    parser.add_argument("--offline", action="store_true",
                        help="never download (as RLS_OFFLINE=1): metrics whose network is missing are skipped with "
                             "a line saying what to put where")
    parser.add_argument("--channels", choices=CHANNELS, default=DEFAULT_CHANNELS,
                        help="what PSNR, SSIM and MS-SSIM compare: y = BT.601 luma (default, the SR convention), "
                             "rgb = all three channels, gray = MATLAB rgb2gray (pyiqa's official SSIM scores)")
    parser.add_argument("--niqe-params", type=Path | None, default=None,
                        help="NIQE pristine model: MATLAB modelparameters.mat or .npz (default: the authors' "
                             "model shipped with the package)")
    parser.add_argument("--out-dir", type=Path | None, default=None,
                        help="where metrics.json/csv go (default: --sr-dir)")
    parser.add_argument("--sr-suffix", default="", help="evaluate <stem><suffix>.png, e.g. _rls for the anchors")
    parser.add_argument("--batch-size", type=int, default=16, help="image pairs scored together (>= 1)")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N, mps, or auto (cuda when a GPU is visible, else cpu)")
    return parser


@guarded
def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    parser = build_parser()
    args = parse_args(parser, argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_input_dir("--sr-dir", args.sr_dir)
    check_input_dir("--hr-dir", args.hr_dir)
    check_input_dir("--lr-dir", args.lr_dir, required=False)
    if args.weights_dir is not None and args.weights_dir.exists():
        check_input_dir("--weights-dir", args.weights_dir)  # a missing one is created by the first download
    if args.niqe_params is not None:
        check_input_file("--niqe-params", args.niqe_params)
    out_dir = args.out_dir or args.sr_dir
    check_output_dir("--out-dir" if args.out_dir else "the default --out-dir (--sr-dir)", out_dir,
                     not_equal={"--hr-dir": args.hr_dir, "--lr-dir": args.lr_dir})
    check_int("--batch-size", args.batch_size, 1)
    check_device("--device", args.device)
    pairs, _, ambiguous = pair_by_stem(args.sr_dir, args.hr_dir, args.sr_suffix)
    if not pairs:
        raise UsageError(f"--sr-dir {args.sr_dir} and --hr-dir {args.hr_dir} have no image name in common "
                         f"(SR files are matched as <stem>{args.sr_suffix}.<ext>)" if not ambiguous else
                         f"no image pair to score: {next(iter(ambiguous.values()))}"
                         + (f" (and {len(ambiguous) - 1} more)" if len(ambiguous) > 1 else ""))

    console = Console(soft_wrap=True, highlight=False)
    if args.offline:
        os.environ["RLS_OFFLINE"] = "1"
    try:
        result = evaluate(args.sr_dir, args.hr_dir, args.lr_dir, args.weights_dir, args.device, args.batch_size,
                          args.sr_suffix, channels=args.channels, niqe_params=args.niqe_params)
    except ValueError as err:  # an unusable --niqe-params file
        raise UsageError(str(err)) from None
    for note in result["notes"]:
        console.print(Text(note, style="yellow"))  # Text: file names are never read as markup
    for side, names in result["unpaired"].items():
        if names:
            console.print(Text(f"{len(names)} file(s) {side.replace('_', ' ')}: {', '.join(names[:5])}"
                               f"{', ...' if len(names) > 5 else ''}"))
    if not result["pairs"]:
        print(f"error: none of the {result['skipped']} image pair(s) could be scored (see the notes above); "
              "nothing written", file=sys.stderr)
        return 1
    skipped = f", {result['skipped']} skipped" if result["skipped"] else ""
    table = Table(title=Text(f"{args.sr_dir} vs {args.hr_dir} ({result['pairs']} pairs{skipped})"))
    values = {**result["set_metrics"], **result["summary"]}
    for key in values:
        table.add_column(key + (" (x1e3)" if key == "KID" else ""), justify="right")
    table.add_row(*[format_value(k, v) for k, v in values.items()])
    console.print(table)
    json_path, csv_path = write_results(result, out_dir)
    console.print(Text(f"wrote {json_path} and {csv_path}"))
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
