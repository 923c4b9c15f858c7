"""Make the low-resolution inputs of the paper's experiments from a folder of HR images (paper sec. 4, Table 4).

    python -m rls_lightning.make_lr --hr-dir celeba_hr --factor 16
    python -m rls_lightning.make_lr --hr-dir celeba_hr --factor 16 --corruption motion-blur --seed 1

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

import argparse
import json
import math
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import atomic_write_path
from .cli.errors import UsageError, check_input_dir, check_int, check_output_dir, guarded
from .lr_images import IMAGE_SUFFIXES

if TYPE_CHECKING:  # torch and the image code are imported when work starts: --help needs neither
    import torch

# The paper gives no strengths (Table 4, Figure 6). Gaussian noise and salt-and-pepper are the official
# data_utils.py's (AddGaussianNoise(sigma=0.1) and SaltAndPepperNoise(d=0.05), both on the [0, 1] scale after
# ToTensor); its blur classes are not in the repository, so the blur strengths are ours. All are written in every
# sidecar file.
DEFAULT_STRENGTH = {"gaussian-noise": 0.1, "salt-pepper": 0.05, "gaussian-blur": 1.0, "motion-blur": None}
STRENGTH_MEANING = {
    "gaussian-noise": "standard deviation as a fraction of the intensity range, added to the LR image",
    "salt-pepper": "fraction of LR pixels set to black or white (half each)",
    "gaussian-blur": "standard deviation in LR pixels of the blur applied to the LR image",
    "motion-blur": "length in HR pixels of the blur applied before downscaling (default: the factor), "
                   "angle drawn from the seed",
}


# (lowest, lowest allowed itself, highest, integer only) of each corruption's strength
STRENGTH_RANGE = {"gaussian-noise": (0.0, True, 1.0, False), "salt-pepper": (0.0, True, 1.0, False),
                  "gaussian-blur": (0.0, False, 100.0, False), "motion-blur": (1.0, True, 1024.0, True)}


def check_strength(corruption: str | None, strength: float | None) -> None:
    """A strength the corruption can use (raises ``UsageError``); None always is (the default is used)."""
    if strength is None:
        return
    if corruption is None:
        raise UsageError(f"--strength {strength}: needs --corruption (bicubic downscaling has no strength)")
    low, low_allowed, high, integer = STRENGTH_RANGE[corruption]
    if not math.isfinite(strength):
        raise UsageError(f"--strength {strength}: must be a finite number")
    if strength < low or (strength == low and not low_allowed) or strength > high:
        bound = ">=" if low_allowed else ">"
        raise UsageError(f"--strength {strength}: {corruption} needs a value {bound} {low:g} and <= {high:g} "
                         f"({STRENGTH_MEANING[corruption]})")
    if integer and not float(strength).is_integer():
        raise UsageError(f"--strength {strength}: {corruption} needs a whole number of pixels")


def blur_margin(corruption: str | None, strength: float | None) -> tuple[int, str] | None:
    """``(pixels, "LR" or "HR")``: the border a blur reflects, which the image it blurs must exceed; None when
    there is no blur. Taken from the kernels themselves, so it cannot drift from them."""
    from .degradations import gaussian_kernel1d, motion_blur_kernel

    if corruption == "gaussian-blur":
        return gaussian_kernel1d(strength).numel() // 2, "LR"
    if corruption == "motion-blur":
        return motion_blur_kernel(int(strength), 0.0).shape[0] // 2, "HR"
    return None


def default_strength(corruption: str | None, factor: int) -> float | None:
    """Our default strength of a corruption (motion blur: as long as the factor, in HR pixels)."""
    if corruption == "motion-blur":
        return float(factor)
    return DEFAULT_STRENGTH.get(corruption)


def image_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**31 - 1)


def degrade(hr: torch.Tensor, factor: int, corruption: str | None, strength: float | None, seed: int) -> torch.Tensor:
    """``[N, C, H, W]`` HR in [-1, 1] -> LR in [-1, 1]: optional motion blur, D, optional LR corruption."""
    from .degradations import (add_gaussian_noise, add_salt_and_pepper, downsample_bicubic, gaussian_blur,
                               motion_blur)

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


def hr_images(hr_dir: Path) -> tuple[list[Path], list[str]]:
    """The HR files to read (named like images, sorted) and the ones skipped up front: a second file with the
    same stem would write the same output."""
    paths, skipped, seen = [], [], {}
    for path in sorted(p for p in hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith(".")):
        if path.stem in seen:
            skipped.append(f"{path.name}: same name stem as {seen[path.stem].name} (both would be {path.stem}.png)")
        else:
            seen[path.stem] = path
            paths.append(path)
    return paths, skipped


@guarded
def main(argv: list[str] | None = None) -> int:
    from rich.progress import track

    parser = argparse.ArgumentParser(prog="python -m rls_lightning.make_lr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hr-dir", type=Path, required=True, help="folder of square HR images")
    parser.add_argument("--factor", type=int, required=True, help="integer downscaling factor >= 1 (8, 16, 64, ...)")
    parser.add_argument("--corruption", choices=sorted(DEFAULT_STRENGTH), default=None,
                        help="robustness study (Table 4): none by default")
    parser.add_argument("--strength", type=float, default=None,
                        help="; ".join(f"{k}: {v} (default {DEFAULT_STRENGTH[k] or 'the factor'}, allowed "
                                       f"{'[' if STRENGTH_RANGE[k][1] else '('}{STRENGTH_RANGE[k][0]:g}, "
                                       f"{STRENGTH_RANGE[k][2]:g}])" for k, v in STRENGTH_MEANING.items()))
    parser.add_argument("--seed", type=int, default=0, help="root seed of the corruptions")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="default: <hr-dir>_lr<factor>[_<corruption>] beside the HR folder")
    args = parser.parse_args(argv)
    check_input_dir("--hr-dir", args.hr_dir)
    check_int("--factor", args.factor, 1)
    check_strength(args.corruption, args.strength)
    strength = args.strength if args.strength is not None else default_strength(args.corruption, args.factor)
    suffix = f"_lr{args.factor}" + (f"_{args.corruption}" if args.corruption else "")
    out_dir = args.out_dir or args.hr_dir.with_name(args.hr_dir.name + suffix)
    check_output_dir("--out-dir" if args.out_dir else "the default --out-dir", out_dir,
                     not_equal={"--hr-dir": args.hr_dir})
    paths, skipped = hr_images(args.hr_dir)
    if not paths:
        raise UsageError(f"--hr-dir {args.hr_dir}: no image files in it "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")

    from .image_io import ImageReadError, read_image, save_png_atomic, to_uint8

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


if __name__ == "__main__":
    from rls_lightning.interrupts import for_process

    for_process(main)
