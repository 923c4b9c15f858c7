"""Make the low-resolution inputs of the paper's experiments from a folder of HR images (paper sec. 4, Table 4).

    python -m rls_lightning.cli.make_lr --hr-dir celeba_hr --factor 16
    python -m rls_lightning.cli.make_lr --hr-dir celeba_hr --factor 16 --corruption motion-blur --seed 1

Bicubic downscaling is the degradation D of the inversion (PIL-exact, antialiased). Corruptions follow the
robustness study: Gaussian noise, salt and pepper and Gaussian blur are applied to the LR image; motion blur is
applied to the HR image before downscaling. Each image gets its own seed (derived from --seed and its name), and
the corruption and its strength are written to a sidecar ``degradation.json`` in the output folder.

Every option is checked before any image is read (factor >= 1; a strength finite and within its corruption's
range, and only with --corruption; the output folder neither an input folder nor an existing file). HR images
are read by the one decoder of ``image_io.read_image`` (16-bit at full precision); an unreadable or unusable
file is skipped with a line saying why, recorded in the sidecar, and the others are still written. Outputs are
8-bit PNGs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from jsonargparse import ArgumentParser

from rls_lightning.atomic import atomic_write_path
from rls_lightning.cli.arguments import ParagraphHelpFormatter, parse_args
from rls_lightning.cli.errors import UsageError, check_input_dir, check_int, check_output_dir, guarded
from rls_lightning.lr_images import IMAGE_SUFFIXES
from rls_lightning.lr_sets import (DEFAULT_STRENGTH, STRENGTH_MEANING, STRENGTH_RANGE, blur_margin, check_strength,
                                   default_strength, degrade, hr_images, image_seed)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m rls_lightning.cli.make_lr", description=__doc__, default_env=False,
                            formatter_class=ParagraphHelpFormatter)
    parser.add_argument("--hr-dir", type=Path, required=True, help="folder of square HR images")
    parser.add_argument("--factor", type=int, required=True, help="integer downscaling factor >= 1 (8, 16, 64, ...)")
    parser.add_argument("--corruption", choices=sorted(DEFAULT_STRENGTH), default=None,
                        help="robustness study (Table 4): none by default")
    parser.add_argument("--strength", type=float, default=None,
                        help="; ".join(f"{k}: {v} (default {DEFAULT_STRENGTH[k] or 'the factor'}, allowed "
                                       f"{'[' if STRENGTH_RANGE[k][1] else '('}{STRENGTH_RANGE[k][0]:g}, "
                                       f"{STRENGTH_RANGE[k][2]:g}])" for k, v in STRENGTH_MEANING.items()))
    parser.add_argument("--seed", type=int, default=0, help="root seed of the corruptions")
    parser.add_argument("--out-dir", type=Path | None, default=None,
                        help="default: <hr-dir>_lr<factor>[_<corruption>] beside the HR folder")
    return parser


@guarded
def main(argv: list[str] | None = None) -> int:
    from rich.progress import track

    args = parse_args(build_parser(), argv)
    check_input_dir("--hr-dir", args.hr_dir)
    check_int("--factor", args.factor, 1)
    try:
        check_strength(args.corruption, args.strength)
    except ValueError as err:
        raise UsageError(str(err)) from None
    strength = args.strength if args.strength is not None else default_strength(args.corruption, args.factor)
    suffix = f"_lr{args.factor}" + (f"_{args.corruption}" if args.corruption else "")
    out_dir = args.out_dir or args.hr_dir.with_name(args.hr_dir.name + suffix)
    check_output_dir("--out-dir" if args.out_dir else "the default --out-dir", out_dir,
                     not_equal={"--hr-dir": args.hr_dir})
    paths, skipped = hr_images(args.hr_dir)
    if not paths:
        raise UsageError(f"--hr-dir {args.hr_dir}: no image files in it "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")

    from rls_lightning.image_io import ImageReadError, read_image, save_png_atomic, to_uint8

    margin = blur_margin(args.corruption, strength)
    notes, written = [], 0
    for path in track(paths, description=f"x{args.factor} {args.corruption or 'bicubic'}"):
        try:
            decoded = read_image(path)
        except ImageReadError as err:  # one unreadable file must not stop the set
            skipped.append(f"{path.name}: {err.reason}")
            continue
        hr = decoded.chw()[None] * 2 - 1
        if hr.shape[-1] != hr.shape[-2] or hr.shape[-1] % args.factor:
            skipped.append(f"{path.name}: size {hr.shape[-1]}x{hr.shape[-2]} is not a square divisible by "
                           f"{args.factor}")
            continue
        side = hr.shape[-1] // args.factor if margin and margin[1] == "LR" else hr.shape[-1]
        if margin and side <= margin[0]:
            skipped.append(f"{path.name}: its {side}px {margin[1]} image is too small for {args.corruption} of "
                           f"strength {strength:g} (the blur needs more than {margin[0]} px)")
            continue
        if decoded.notes:
            notes.append(f"{path.name}: {decoded.note}")
        lr = degrade(hr, args.factor, args.corruption, strength, image_seed(args.seed, path.name))
        save_png_atomic(to_uint8(lr[0]), out_dir / f"{path.stem}.png")
        written += 1
    for line in notes + skipped:
        print(f"{args.hr_dir / line}", file=sys.stderr)
    if not written:
        print(f"error: no LR image written: all {len(skipped)} file(s) of {args.hr_dir} were skipped "
              "(reasons above)", file=sys.stderr)
        return 1
    sidecar = {"factor": args.factor, "degradation": "bicubic (PIL-equivalent, antialiased)",
               "corruption": args.corruption, "strength": strength,
               "strength_meaning": STRENGTH_MEANING.get(args.corruption), "seed": args.seed,
               "source": str(args.hr_dir), "skipped": skipped, "conversions": notes}
    with atomic_write_path(out_dir / "degradation.json") as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2))
    print(f"{written} LR image(s) written to {out_dir}" + (f", {len(skipped)} skipped" if skipped else ""))
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
