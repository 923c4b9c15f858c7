"""Reading a directory of low-resolution inputs so that one bad file never stops a run.

Each file is either loaded (converted when that is safe: grayscale, palette, RGBA, 16-bit, CMYK) with a note saying
what was done, or rejected with a one-line reason (corrupt, not an image, wrong size).
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .fingerprint import first_line

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def images_by_stem(folder: Path, suffix: str = "") -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (hidden files skipped); with ``suffix``, only the names
    ``<stem><suffix>.<ext>``, keyed by ``<stem>``."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.stem.endswith(suffix):
            found[path.stem[: len(path.stem) - len(suffix)] if suffix else path.stem] = path
    return found


@dataclasses.dataclass
class LowResImage:
    path: Path
    stem: str
    pixels: torch.Tensor  # [C, h, w] in [-1, 1]
    factor: int
    note: str = ""


@dataclasses.dataclass
class Rejected:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: skipped, {self.reason}"


def _to_uint8_array(image: Image.Image, channels: int) -> tuple[np.ndarray, str]:
    """``[h, w, channels]`` uint8 pixels and a note on any conversion made."""
    notes = []
    if image.mode == "F":
        raise ValueError("floating-point images are not supported (save as 8- or 16-bit PNG)")
    if image.mode.startswith("I"):  # 16- or 32-bit integer grayscale
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(np.round(array / peak * 255.0), 0, 255).astype(np.uint8), mode="L")
        notes.append("16-bit grayscale scaled to 8 bits" if peak > 255 else "32-bit grayscale read as 8 bits")
    target = "RGB" if channels == 3 else "L"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        notes.append("alpha channel dropped")
    elif image.mode in ("L", "1") and target == "RGB":
        notes.append("grayscale replicated to RGB")
    elif image.mode != target:
        notes.append(f"{image.mode} converted to {target}")
    array = np.asarray(image.convert(target), dtype=np.uint8)
    return (array[:, :, None] if array.ndim == 2 else array), "; ".join(notes)


def load_low_res(path: Path, generator_resolution: int, channels: int = 3) -> LowResImage | Rejected:
    """Load one LR image and infer the factor; or say why it cannot be used."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                width, height = image.size
                array, note = _to_uint8_array(image, channels)
    except UnidentifiedImageError:
        return Rejected(path, "not an image file")
    except Exception as err:  # noqa: BLE001 - Pillow raises many types on odd files; none may stop the run
        return Rejected(path, f"unreadable image ({first_line(err)})")
    if width != height:
        return Rejected(path, f"not square ({width}x{height}); crop it to a square first")
    if width > generator_resolution or generator_resolution % width:
        return Rejected(path, f"size {width}x{height} does not divide the generator's {generator_resolution}px "
                              "by an integer factor")
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0
    return LowResImage(path=path, stem=path.stem, pixels=pixels, factor=generator_resolution // width, note=note)


def scan_directory(directory: Path, generator_resolution: int,
                   channels: int = 3) -> tuple[list[LowResImage], list[Rejected]]:
    """All usable inputs of ``directory`` (sorted by name) and the rejected files with their reasons.

    Hidden files and sub-directories are ignored. Two files with the same stem (``a.png``, ``a.jpg``) would
    write the same outputs, so the second is rejected.
    """
    usable: list[LowResImage] = []
    rejected: list[Rejected] = []
    seen: dict[str, Path] = {}
    for path in sorted(p for p in Path(directory).iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.stem in seen:
            rejected.append(Rejected(path, f"same name stem as {seen[path.stem].name}"))
            continue
        result = load_low_res(path, generator_resolution, channels)
        if isinstance(result, Rejected):
            rejected.append(result)
        else:
            seen[path.stem] = path
            usable.append(result)
    return usable, rejected
