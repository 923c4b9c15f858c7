"""Reading a directory of low-resolution inputs so that one bad file never stops a run.

Each file is either loaded (converted when that is safe: grayscale, palette, RGBA, 16-bit, CMYK, EXIF-rotated,
first frame of an animation; see ``image_io.read_image``) with a note saying what was done, or rejected with a
one-line reason (corrupt, not an image, a format other than ``image_io.ALLOWED_FORMATS``, wrong size, a folder, a
broken symbolic link).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from .names import printable

if TYPE_CHECKING:  # decoding (numpy, torch, PIL) is imported where a file is read: --help needs none of it
    import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


AMBIGUOUS = "ambiguous, the same name stem (which one is meant is unknown; keep one, rename the others)"


def match_stems(folder: Path, suffix: str = "") -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """The image files of ``folder`` by name stem (hidden files skipped; with ``suffix``, only the names
    ``<stem><suffix>.<ext>``, keyed by ``<stem>``): ``({stem: path}, {stem: [paths]})``, the second for the stems
    of more than one file (``a.png`` and ``a.jpg``), which are left out of the first: picking one of them would
    pair an image with a file the user may not have meant."""
    files: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.stem.endswith(suffix):
            files.setdefault(path.stem[: len(path.stem) - len(suffix)] if suffix else path.stem, []).append(path)
    return ({stem: paths[0] for stem, paths in files.items() if len(paths) == 1},
            {stem: paths for stem, paths in files.items() if len(paths) > 1})


def listed(paths: list) -> str:
    """``a, b and c``."""
    names = [str(p) for p in paths]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclasses.dataclass
class LowResImage:
    path: Path
    stem: str
    pixels: torch.Tensor  # [C, h, w] in [-1, 1]
    factor: int
    note: str = ""
    # A crop of a photo: what it was cut from and how (the photo's pixels, the detection settings, the face's
    # index). It names the crop where the crop's own 8-bit values do not: face landmarks differ in their last bits
    # with the CPU's thread count, and a few crop pixels by one level with them.
    source: str | None = None

    @property
    def digest(self) -> str:
        """The input as the inversion sees it (factor and ``source``, or pixel shape and values), hashed: a finished
        result counts only for the input that made it, not for a file replaced under the same name or another crop
        of a photo (``inversion.outputs.made_from``)."""
        import hashlib

        if self.source is not None:
            return f"x{self.factor}:" + hashlib.sha256(self.source.encode()).hexdigest()[:16]
        return self.pixel_digest

    @property
    def pixel_digest(self) -> str:
        from .fingerprint import tensor_digest

        return f"x{self.factor}:" + tensor_digest([("pixels", self.pixels)])[:16]


@dataclasses.dataclass
class Rejected:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{printable(self.path)}: skipped, {self.reason}"


def size_problem(width: int, height: int, generator_resolution: int) -> str | None:
    """Why an LR image of this size cannot be super-resolved by the generator, or None when it can."""
    if width != height:
        return f"not square ({width}x{height}); crop it to a square first"
    if width > generator_resolution:
        return f"size {width}x{height} is larger than the generator's {generator_resolution}px output"
    if generator_resolution % width:
        return (f"size {width}x{height} does not divide the generator's {generator_resolution}px "
                "by an integer factor")
    return None


def load_low_res(path: Path, generator_resolution: int, channels: int = 3) -> LowResImage | Rejected:
    """Load one LR image and infer the factor; or say why it cannot be used.

    The size is checked from the file's header before decoding (a huge file costs no memory). Samples deeper
    than 8 bits are rounded to 8 bits, noted: the LR target is then the same as from an 8-bit file.
    """
    from .image_io import ImageReadError, ImageTooLarge, read_image

    try:
        decoded = read_image(path, channels, max_side=generator_resolution, eight_bit=True)
    except ImageTooLarge as err:
        return Rejected(path, size_problem(*err.size, generator_resolution) or err.reason)
    except ImageReadError as err:
        return Rejected(path, err.reason)
    height, width = decoded.pixels.shape[:2]
    problem = size_problem(width, height, generator_resolution)
    if problem is not None:
        return Rejected(path, problem)
    pixels = decoded.chw() * 2.0 - 1.0
    return LowResImage(path=path, stem=path.stem, pixels=pixels, factor=generator_resolution // width,
                       note=decoded.note)


def _listed(path: Path) -> bool:
    """Hidden files and ordinary sub-folders are not inputs; a folder named like an image is listed (and then
    rejected) so that it is not silently missing from the results."""
    if path.name.startswith("."):
        return False
    return not path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


def scan_directory(directory: Path, generator_resolution: int,
                   channels: int = 3) -> tuple[list[LowResImage], list[Rejected]]:
    """All usable inputs of ``directory`` (sorted by name) and the rejected files with their reasons.

    Hidden files and sub-folders are ignored, except a folder named like an image (``x.png``), which is
    rejected like a broken or looping symbolic link and any other file that is not a usable image: every
    listed entry ends up in exactly one of the two lists. Two files with the same stem (``a.png``, ``a.jpg``)
    would write the same outputs, so the second is rejected.
    """
    usable: list[LowResImage] = []
    rejected: list[Rejected] = []
    seen: dict[str, Path] = {}
    for path in sorted(p for p in Path(directory).iterdir() if _listed(p)):
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
