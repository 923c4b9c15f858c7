"""Make the low-resolution inputs of the paper's experiments from a folder of HR images (paper sec. 4, Table 4).

    python -m rls_lightning.make_lr --hr-dir celeba_hr --factor 16
    python -m rls_lightning.make_lr --hr-dir celeba_hr --factor 16 --corruption motion-blur --seed 1

Bicubic downscaling is the degradation D of the inversion (PIL-exact, antialiased). Corruptions follow the
robustness study: Gaussian noise, salt and pepper and Gaussian blur are applied to the LR image; motion blur is
applied to the HR image before downscaling. Each image gets its own seed (derived from --seed and its name), and
the corruption and its strength are written to a sidecar ``degradation.json`` in the output folder.
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import torch

from .atomic import atomic_write_path
from .degradations import add_gaussian_noise, add_salt_and_pepper, downsample_bicubic, gaussian_blur, motion_blur
from .image_io import save_png_atomic, to_uint8
from .lr_images import IMAGE_SUFFIXES

# The paper does not give strengths; these are ours, visible in every sidecar file.
DEFAULT_STRENGTH = {"gaussian-noise": 0.05, "salt-pepper": 0.05, "gaussian-blur": 1.0, "motion-blur": None}
STRENGTH_MEANING = {
    "gaussian-noise": "standard deviation as a fraction of the intensity range, added to the LR image",
    "salt-pepper": "fraction of LR pixels set to black or white (half each)",
    "gaussian-blur": "standard deviation in LR pixels of the blur applied to the LR image",
    "motion-blur": "length in HR pixels of the blur applied before downscaling (default: the factor), "
                   "angle drawn from the seed",
}


def default_strength(corruption: str | None, factor: int) -> float | None:
    """Our default strength of a corruption (motion blur: as long as the factor, in HR pixels)."""
    if corruption == "motion-blur":
        return float(factor)
    return DEFAULT_STRENGTH.get(corruption)


def image_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def degrade(hr: torch.Tensor, factor: int, corruption: str | None, strength: float | None, seed: int) -> torch.Tensor:
    """``[N, C, H, W]`` HR in [-1, 1] -> LR in [-1, 1]: optional motion blur, D, optional LR corruption."""
    if corruption == "motion-blur":
        hr = motion_blur(hr, int(strength), seed=seed)
    lr = downsample_bicubic(hr, factor)
    if corruption == "gaussian-noise":
        lr = add_gaussian_noise(lr, strength, seed=seed)
    elif corruption == "salt-pepper":
        lr = add_salt_and_pepper(lr, strength, seed=seed)
    elif corruption == "gaussian-blur":
        lr = gaussian_blur(lr, strength)
    return lr.clamp(-1, 1)


def main(argv: list[str] | None = None) -> int:
    from rich.progress import track

    from .image_io import load_rgb

    parser = argparse.ArgumentParser(prog="python -m rls_lightning.make_lr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hr-dir", type=Path, required=True, help="folder of square HR images")
    parser.add_argument("--factor", type=int, required=True, help="integer downscaling factor (8, 16, 64, ...)")
    parser.add_argument("--corruption", choices=sorted(DEFAULT_STRENGTH), default=None,
                        help="robustness study (Table 4): none by default")
    parser.add_argument("--strength", type=float, default=None,
                        help="; ".join(f"{k}: {v} (default {DEFAULT_STRENGTH[k]})"
                                       for k, v in STRENGTH_MEANING.items()))
    parser.add_argument("--seed", type=int, default=0, help="root seed of the corruptions")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="default: <hr-dir>_lr<factor>[_<corruption>] beside the HR folder")
    args = parser.parse_args(argv)
    if not args.hr_dir.is_dir():
        print(f"error: {args.hr_dir}: not a folder", file=sys.stderr)
        return 2
    strength = args.strength if args.strength is not None else default_strength(args.corruption, args.factor)
    suffix = f"_lr{args.factor}" + (f"_{args.corruption}" if args.corruption else "")
    out_dir = args.out_dir or args.hr_dir.with_name(args.hr_dir.name + suffix)
    if out_dir.resolve() == args.hr_dir.resolve():
        print(f"error: {out_dir}: the output folder must differ from the HR folder", file=sys.stderr)
        return 2
    paths = sorted(p for p in args.hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    skipped = []
    for path in track(paths, description=f"x{args.factor} {args.corruption or 'bicubic'}"):
        try:
            hr = load_rgb(path)[None] * 2 - 1
        except Exception as err:  # noqa: BLE001 - one unreadable file must not stop the set
            skipped.append(f"{path.name}: unreadable ({err})")
            continue
        if hr.shape[-1] != hr.shape[-2] or hr.shape[-1] % args.factor:
            skipped.append(f"{path.name}: size {hr.shape[-1]}x{hr.shape[-2]} is not a square divisible by "
                           f"{args.factor}")
            continue
        lr = degrade(hr, args.factor, args.corruption, strength, image_seed(args.seed, path.name))
        save_png_atomic(to_uint8(lr[0]), out_dir / f"{path.stem}.png")
    sidecar = {"factor": args.factor, "degradation": "bicubic (PIL-equivalent, antialiased)",
               "corruption": args.corruption, "strength": strength,
               "strength_meaning": STRENGTH_MEANING.get(args.corruption), "seed": args.seed,
               "source": str(args.hr_dir), "skipped": skipped}
    with atomic_write_path(out_dir / "degradation.json") as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2))
    for line in skipped:
        print(f"{args.hr_dir / line}", file=sys.stderr)
    print(f"{len(paths) - len(skipped)} LR image(s) written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
