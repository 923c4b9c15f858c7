"""Image files <-> arrays and tensors; one decoder for every command; writes are atomic (temporary file, rename).

``read_image`` is the only place a file is decoded (``evaluate``, ``make_lr``, the LR inputs of ``invert`` and the
experiments all use it), so every command agrees on what a pixel value is:

* 8-bit files (L, RGB, RGBA, LA, P, PA, CMYK, YCbCr, 1-bit, ...) go through Pillow's own conversions;
* 16-bit grayscale (``I;16``, ``I;16B``, 16-bit PGM) is divided by 65535, exactly;
* 48-bit RGB and 64-bit RGBA PNGs are decoded at full precision: Pillow only hands out the high byte of each
  sample, so the file is decoded a second time with the little-endian unpacker of the same 6- or 8-byte pixel
  layout, which hands out the low byte (same decompression and unfiltering, only the byte picked differs);
  other 16-bit colour files (TIFF, PPM, 16-bit gray+alpha PNG) are read as 8 bits per channel, with a note;
* 32-bit float grayscale (``F``, e.g. float TIFF) is used as is when every pixel is finite and in [0, 1], else
  refused; 32-bit integer grayscale (``I``) is refused, its white level being unknown.

Alpha is dropped, the first frame of an animation or multi-page file is used, the EXIF orientation is applied,
and every one of these conversions is reported in ``DecodedImage.notes``. A file that cannot be used raises
``ImageReadError`` with a one-line reason; the size is checked from the header (``max_side``) before any pixel
is decoded, and Pillow's decompression-bomb warning is an error where no ``max_side`` bounds the size.
"""
from __future__ import annotations

import dataclasses
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_write_path
from .fingerprint import first_line

# EXIF orientation -> what applying it does (TIFF/EXIF 2.3, tag 0x0112); 1 is "as stored"
ORIENTATIONS = {2: "mirrored", 3: "rotated 180 degrees", 4: "flipped", 5: "transposed",
                6: "rotated 90 degrees clockwise", 7: "transversed", 8: "rotated 90 degrees counter-clockwise"}
# PNG keeps 16-bit samples big-endian; the "...;16L" unpacker of the same pixel size picks the other byte
_LOW_BYTE_RAWMODE = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}
# ITU-R 601-2 luma, the weights of Pillow's own RGB -> L conversion, for images Pillow cannot convert
_LUMA = np.array([0.299, 0.587, 0.114])


class ImageReadError(ValueError):
    """A file that cannot be used as an image; ``str()`` is ``<path>: <reason>``, one line."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ImageTooLarge(ImageReadError):
    """Refused from the header's size, before any pixel was decoded."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], max_side: int) -> None:
        self.size = size
        super().__init__(path, f"size {size[0]}x{size[1]} is larger than the {max_side} px allowed here")


@dataclasses.dataclass
class DecodedImage:
    """What ``read_image`` made of a file: the pixels, and what it had to do to get them."""

    pixels: np.ndarray  # float32 [H, W, C] in [0, 1], C = 1 or 3 (alpha dropped)
    notes: list[str]  # every conversion made, one short phrase each

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    def chw(self) -> torch.Tensor:
        """The pixels as a ``[C, H, W]`` float tensor in [0, 1]."""
        return torch.from_numpy(np.ascontiguousarray(self.pixels)).permute(2, 0, 1)


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a plain file before opening it (a FIFO would block the run forever)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise ImageReadError(path, "broken or looping symbolic link")
    if os.path.isdir(path):
        raise ImageReadError(path, "a folder, not an image")
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise ImageReadError(path, f"cannot be read ({err.strerror or first_line(err)})") from None
    if not stat.S_ISREG(mode):
        raise ImageReadError(path, "not a regular file (a pipe, socket or device)")


def _rawmode(tile) -> str | None:
    """The raw mode a decoder tile unpacks from (Pillow puts it alone or first in the tile's arguments)."""
    args = tile.args
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else None


def _orientation(image: Image.Image, notes: list[str]) -> int:
    """The EXIF orientation to apply (1: none); a damaged EXIF block is noted, not fatal."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - the EXIF parser raises many types on damaged blocks
        notes.append("EXIF data unreadable, orientation ignored")
        return 1
    if value in ORIENTATIONS:
        notes.append(f"EXIF orientation {value} applied ({ORIENTATIONS[value]})")
        return value
    if value != 1:
        notes.append(f"unknown EXIF orientation {value!r} ignored")
    return 1


def _oriented(image: Image.Image, orientation: int) -> Image.Image:
    return ImageOps.exif_transpose(image) if orientation in ORIENTATIONS else image


def _low_bytes(path: Path, tiles: list, orientation: int) -> np.ndarray | None:
    """The low byte of every 16-bit sample of a 48/64-bit PNG (decoded again), or None when not such a file."""
    if not tiles or any(t.codec_name != "zip" or t.args not in _LOW_BYTE_RAWMODE for t in tiles):
        return None
    with Image.open(path) as again:
        again.tile = [t._replace(args=_LOW_BYTE_RAWMODE[t.args]) for t in tiles]
        again.load()
        return np.asarray(_oriented(again, orientation), dtype=np.uint16)


def _eight_bit(image: Image.Image, channels: int, notes: list[str]) -> np.ndarray:
    """Pillow's conversion of an 8-bit image to L or RGB, in [0, 1], with a note on what it did."""
    target = "RGB" if channels == 3 else "L"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        notes.append("alpha channel dropped")
    elif image.mode in ("L", "1") and target == "RGB":
        notes.append("grayscale replicated to RGB")
    elif image.mode != target:
        notes.append(f"{image.mode} converted to {target}")
    array = np.asarray(image.convert(target), dtype=np.float32)  # a new, writable array
    array /= 255.0  # in place: a large image is held once as float, not twice
    return array[:, :, None] if array.ndim == 2 else array


def _deep(path: Path, image: Image.Image, file_format: str | None, tiles: list, orientation: int,
          notes: list[str]) -> tuple[np.ndarray, str] | None:
    """``([H, W, 1 or 3] float64 in [0, 1], description)`` of an (oriented) image with more than 8 bits per
    sample; None for an 8-bit one (a colour file Pillow only gives at 8 bits is noted and treated as 8-bit)."""
    mode = image.mode
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        bad = int((~np.isfinite(array)).sum())
        if bad:
            raise ImageReadError(path, f"{bad} non-finite (NaN or infinite) float pixel(s)")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ImageReadError(path, f"float pixels outside [0, 1] (from {array.min():.4g} to {array.max():.4g})")
        return array[:, :, None], "32-bit float grayscale"
    if mode.startswith("I;16") or (mode == "I" and file_format == "PPM"):  # Pillow scales PGM maxval to 65535
        return np.asarray(image, dtype=np.float64)[:, :, None] / 65535.0, "16-bit grayscale"
    if mode.startswith("I"):
        raise ImageReadError(path, "32-bit integer pixels have no known white level (save as 8- or 16-bit PNG)")
    if not any(";16" in (_rawmode(t) or "") for t in tiles):
        return None
    low = _low_bytes(path, tiles, orientation)
    if low is None:
        notes.append("16-bit channels read as 8-bit (Pillow cannot decode more of this file)")
        return None
    samples = (np.asarray(image, dtype=np.uint16) * 256 + low).astype(np.float64) / 65535.0
    if mode == "RGBA":
        notes.append("alpha channel dropped")
    return samples[:, :, :3], "48-bit RGB"


def _decode(path: Path, image: Image.Image, channels: int, eight_bit: bool, notes: list[str]) -> np.ndarray:
    """The pixels of an opened file, ``[H, W, channels]`` float32 in [0, 1]; conversions noted."""
    tiles, file_format = list(image.tile), image.format  # load() empties the tiles, transposing drops the format
    image.load()
    orientation = _orientation(image, notes)
    image = _oriented(image, orientation)
    deep = _deep(path, image, file_format, tiles, orientation, notes)
    if deep is None:
        return _eight_bit(image, channels, notes)
    samples, description = deep
    if eight_bit:
        notes.append(f"{description} scaled to 8 bits" + (" per channel" if samples.shape[2] == 3 else ""))
    if samples.shape[2] == 1 and channels == 3:
        samples = np.repeat(samples, 3, axis=2)
        notes.append("grayscale replicated to RGB")
    elif samples.shape[2] == 3 and channels == 1:
        samples = (samples @ _LUMA)[:, :, None]
        notes.append("RGB converted to L")
    if eight_bit:
        samples = np.round(samples * 255.0) / 255.0
    return samples.astype(np.float32)


def read_image(path: str | os.PathLike, channels: int = 3, max_side: int | None = None,
               eight_bit: bool = False) -> DecodedImage:
    """Decode one image file to ``[H, W, channels]`` float32 in [0, 1] (``channels`` 1 or 3).

    ``max_side``: refuse (``ImageTooLarge``) a file whose width or height exceeds it, from the header, before
    decoding. ``eight_bit``: round deeper samples to 8 bits (noted), as an 8-bit file of the same image would be.
    Raises ``ImageReadError`` (one line: path and reason) for anything that is not a usable image.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    path = Path(path)
    _check_regular_file(path)
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # a caller's max_side bounds the size itself, checked below from the header: Pillow's pixel-count
            # warning (89.5 megapixels) would refuse photos inside it (12000x9000); twice that stays a bomb
            warnings.simplefilter("ignore" if max_side is not None else "error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if max_side is not None and max(image.size) > max_side:
                    raise ImageTooLarge(path, image.size, max_side)
                frames = getattr(image, "n_frames", 1)
                if frames > 1:
                    notes.append(f"first of {frames} frames used")
                pixels = _decode(path, image, channels, eight_bit, notes)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(path, f"refused as a possible decompression bomb ({first_line(err)})") from None
    except OSError as err:
        if err.errno is None:  # Pillow's own failures (truncated data, broken chunks) carry no errno
            raise ImageReadError(path, f"unreadable image ({first_line(err)})") from None
        raise ImageReadError(path, f"cannot be read ({err.strerror or first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - Pillow raises many types on odd files; none may stop a run
        raise ImageReadError(path, f"unreadable image ({first_line(err)})") from None
    return DecodedImage(pixels=pixels, notes=notes)


def load_rgb(path: str | os.PathLike) -> torch.Tensor:
    """An image file as ``[3, H, W]`` float in [0, 1] (see ``read_image``; raises ``ImageReadError``)."""
    return read_image(path, channels=3).chw()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` or ``[C, H, W]`` in [-1, 1] -> ``uint8`` ``[..., H, W, C]`` (rounded, clipped)."""
    array = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return array.movedim(-3, -1).numpy()


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """Tile ``[N, C, H, W]`` images into one ``uint8`` array, ``columns`` per row, missing cells black."""
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, c), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = tile
    return grid


def save_png_atomic(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write a ``uint8`` ``[H, W, C]`` array as PNG so that ``path`` is either absent or complete."""
    with atomic_write_path(path) as tmp:
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(tmp, format="PNG")
