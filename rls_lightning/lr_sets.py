"""The low-resolution sets of the paper's experiments (sec. 4, Table 4): the degradation of each HR image.

Bicubic downscaling is the degradation D of the inversion (PIL-exact, antialiased). Corruptions follow the
robustness study: Gaussian noise, salt and pepper and Gaussian blur are applied to the LR image; motion blur is
applied to the HR image before downscaling (``degrade``). Each image gets its own seed (``image_seed``: from a
root seed and its name). ``check_strength`` raises ``ValueError`` for a strength its corruption cannot use, with
a line that names ``--strength``, for the commands to show as it is.

Used by ``python -m rls_lightning.cli.make_lr`` and by ``experiments``; torch is imported when work starts.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from .lr_images import IMAGE_SUFFIXES

if TYPE_CHECKING:  # torch and the degradations are imported when work starts: --help needs neither
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
    """A strength the corruption can use (``ValueError`` with one line naming --strength otherwise); None always
    is (the default is used)."""
    if strength is None:
        return
    if corruption is None:
        raise ValueError(f"--strength {strength}: needs --corruption (bicubic downscaling has no strength)")
    low, low_allowed, high, integer = STRENGTH_RANGE[corruption]
    if not math.isfinite(strength):
        raise ValueError(f"--strength {strength}: must be a finite number")
    if strength < low or (strength == low and not low_allowed) or strength > high:
        bound = ">=" if low_allowed else ">"
        raise ValueError(f"--strength {strength}: {corruption} needs a value {bound} {low:g} and <= {high:g} "
                         f"({STRENGTH_MEANING[corruption]})")
    if integer and not float(strength).is_integer():
        raise ValueError(f"--strength {strength}: {corruption} needs a whole number of pixels")


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
