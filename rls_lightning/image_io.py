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

Only ``ALLOWED_FORMATS`` are ever decoded. Pillow picks a reader by a file's content, not its name, and some of its
readers hand the file to another program (a PostScript file named ``face.png`` goes to Ghostscript, a full
interpreter): so every file a user gives is opened by ``open_image``, which lets Pillow try only the readers of
the allowed formats, and anything else is refused in one line naming its real format (found from its first
bytes, or by Pillow's readers that only parse a header, never by running anything).

An 8-bit file is converted a band of rows at a time straight into the array returned, with the EXIF orientation
applied by where each band is written: besides that array, only Pillow's decoded image is held (4 bytes a pixel),
never a turned copy of it or a whole-image conversion (``read_image(..., dtype=np.uint8)`` is what a 108-megapixel
photo costs: 7 bytes a pixel).
"""
from __future__ import annotations

import dataclasses
import functools
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
LUMA = np.array([0.299, 0.587, 0.114])
# EXIF orientation -> a view of the oriented array in the file's stored layout (the inverse of what
# ImageOps.exif_transpose does to the image): a band of stored rows written into it lands where orienting puts it
_STORED_VIEW = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
                5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, 1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
                8: lambda a: np.rot90(a, -1)}
MAX_ICC_BYTES = 8 << 20  # larger embedded profiles are not carried over (the largest LUT profiles are a few MB)
_BAND_BYTES = 1 << 22  # what one band of an 8-bit conversion may take (as the output dtype)

# The formats a user's file is decoded as: those the README and the folder readers name (lr_images.IMAGE_SUFFIXES:
# PNG, JPEG, BMP, WebP, TIFF, PPM/PGM; photos also GIF). Pillow's names; JPEG includes camera MPO files (Pillow
# opens them through its JPEG reader). Pillow tries no other reader, so no other code ever sees the file.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM")
ALLOWED_FORMAT_NAMES = "PNG, JPEG, WebP, BMP, TIFF, GIF, PPM/PGM"
# Pillow readers never tried, not even to name a refused file's format: EPS runs Ghostscript when decoding, and
# checks for it by running ``gs``
_NEVER_TRIED = frozenset({"EPS"})
# formats named from their first bytes: PostScript for the reader above; PDF, which Pillow cannot read at all
_SIGNATURES = ((b"%!PS", "PostScript (EPS)"), (b"\xc5\xd0\xd3\xc6", "PostScript (EPS)"), (b"%PDF-", "PDF"))


class ImageReadError(ValueError):
    """A file that cannot be used as an image; ``str()`` is ``<path>: <reason>``, one line."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ImageOpenError(ImageReadError, UnidentifiedImageError):
    """Refused by ``open_image`` before Pillow read anything but the header: a format not allowed, or not a
    regular file. Also an ``OSError`` (Pillow's ``UnidentifiedImageError``), so that code catching what
    ``Image.open`` raises keeps catching it."""


class ImageTooLarge(ImageReadError):
    """Refused from the header's size, before any pixel was decoded."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], max_side: int) -> None:
        self.size = size
        super().__init__(path, f"size {size[0]}x{size[1]} is larger than the {max_side} px allowed here")


@dataclasses.dataclass
class DecodedImage:
    """What ``read_image`` made of a file: the pixels, and what it had to do to get them."""

    pixels: np.ndarray  # [H, W, C], C = 1 or 3 (alpha dropped): float32 in [0, 1], or uint8 (read_image's dtype)
    notes: list[str]  # every conversion made, one short phrase each

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    def chw(self) -> torch.Tensor:
        """The pixels as a ``[C, H, W]`` tensor (float in [0, 1] as decoded by default)."""
        return torch.from_numpy(np.ascontiguousarray(self.pixels)).permute(2, 0, 1)


def _check_regular_file(path: Path) -> None:
    """Refuse what is not a plain file before opening it (a FIFO would block the run forever)."""
    if os.path.islink(path) and not os.path.exists(path):
        raise ImageOpenError(path, "broken or looping symbolic link")
    if os.path.isdir(path):
        raise ImageOpenError(path, "a folder, not an image")
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise ImageOpenError(path, f"cannot be read ({err.strerror or first_line(err)})") from None
    if not stat.S_ISREG(mode):
        raise ImageOpenError(path, "not a regular file (a pipe, socket or device)")


def _with_article(name: str) -> str:
    """``a PNG``, ``an ICO``: format names are read letter by letter, so the first letter's name decides."""
    return f"{'an' if name[:1].upper() in 'AEFHILMNORSX' else 'a'} {name}"


def real_format(path: str | os.PathLike) -> str | None:
    """What a file really is (``"PostScript (EPS)"``, ``"ICO"``, ...), found without running anything: from its
    first bytes, else by the Pillow readers that only parse a header (never ``_NEVER_TRIED``; nothing is
    decoded); None when nothing recognises it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    Image.init()  # every reader registered, so that any format Pillow knows can be named
    others = [name for name in Image.ID if name not in _NEVER_TRIED]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a bomb warning is no concern: no pixel is decoded here
            with Image.open(path, formats=others) as image:
                return image.format
    except Exception:  # noqa: BLE001 - any reader's failure means only that it is not that format
        return None


@functools.cache
def allowed_readers() -> tuple[str, ...]:
    """``ALLOWED_FORMATS`` this Pillow build can read (one built without WebP has no such reader to name)."""
    Image.init()
    return tuple(name for name in ALLOWED_FORMATS if name in Image.OPEN)


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open a user's image file with Pillow through the readers of ``ALLOWED_FORMATS`` only (nothing decoded
    yet: use it as ``with open_image(path) as image:``); every file a user gives goes through here.

    Raises ``ImageOpenError`` (one line: the path, then the reason) for anything but a regular file, and for a file
    in another format, named: ``face.png: a PostScript (EPS) file, not an allowed image format (PNG, ...)``, or
    ``not an image file`` when nothing recognises it. Pillow's own errors (a broken header, a decompression bomb)
    pass through unchanged, as from ``Image.open``.
    """
    path = Path(path)
    _check_regular_file(path)
    try:
        return Image.open(path, formats=allowed_readers())
    except UnidentifiedImageError:
        found = real_format(path)
    if found is None:
        raise ImageOpenError(path, "not an image file")
    raise ImageOpenError(path, f"{_with_article(found)} file, not an allowed image format ({ALLOWED_FORMAT_NAMES})")


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
    with open_image(path) as again:
        again.tile = [t._replace(args=_LOW_BYTE_RAWMODE[t.args]) for t in tiles]
        again.load()
        return np.asarray(_oriented(again, orientation), dtype=np.uint16)


def _eight_bit(image: Image.Image, channels: int, orientation: int, notes: list[str], dtype: np.dtype) -> np.ndarray:
    """Pillow's conversion of an 8-bit image to L or RGB, oriented, ``[H, W, channels]`` as ``dtype`` (float32 in
    [0, 1], or uint8), with a note on what it did.

    Converted a band of rows at a time, each written where the orientation puts it (``_STORED_VIEW``): the
    conversions are per pixel and turning only moves pixels, so this is exactly the whole image converted and
    turned, without ever holding a second full-size copy (Pillow keeps 4 bytes a pixel; a 108-megapixel photo's
    turned copy and RGB copy were 0.43 GB each)."""
    target = "RGB" if channels == 3 else "L"
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        notes.append("alpha channel dropped")
    elif image.mode in ("L", "1") and target == "RGB":
        notes.append("grayscale replicated to RGB")
    elif image.mode != target:
        notes.append(f"{image.mode} converted to {target}")
    width, height = image.size
    turned = orientation in (5, 6, 7, 8)
    out = np.empty((width, height, channels) if turned else (height, width, channels), dtype=dtype)
    stored = _STORED_VIEW[orientation](out) if orientation in _STORED_VIEW else out  # [height, width, channels]
    rows = max(1, _BAND_BYTES // max(1, width * channels * out.itemsize))
    for top in range(0, height, rows):
        band = image.crop((0, top, width, min(top + rows, height)))
        if band.mode != target:
            band = band.convert(target)
        values = np.asarray(band).reshape(band.height, width, channels)
        if out.dtype == np.float32:
            values = values.astype(np.float32)
            values /= 255.0  # the float32 division every 8-bit file has always been read with
        stored[top:top + band.height] = values
    return out


def _may_be_deep(mode: str, tiles: list) -> bool:
    """Whether ``_deep`` has to look at an image of this mode and these decoder tiles (else it is 8-bit)."""
    return mode == "F" or mode.startswith("I") or any(";16" in (_rawmode(t) or "") for t in tiles)


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


def _from_deep(samples: np.ndarray, description: str, channels: int, eight_bit: bool, notes: list[str],
               dtype: np.dtype) -> np.ndarray:
    """``_deep``'s samples as ``[H, W, channels]`` float32 in [0, 1], or as uint8 (rounded from that float32)."""
    if eight_bit or dtype == np.uint8:
        notes.append(f"{description} scaled to 8 bits" + (" per channel" if samples.shape[2] == 3 else ""))
    if samples.shape[2] == 1 and channels == 3:
        samples = np.repeat(samples, 3, axis=2)
        notes.append("grayscale replicated to RGB")
    elif samples.shape[2] == 3 and channels == 1:
        samples = (samples @ LUMA)[:, :, None]
        notes.append("RGB converted to L")
    if eight_bit:
        samples = np.round(samples * 255.0) / 255.0
    pixels = samples.astype(np.float32)
    if dtype == np.float32:
        return pixels
    del samples
    out = np.empty(pixels.shape, dtype=np.uint8)
    rows = max(1, _BAND_BYTES // max(1, pixels.shape[1] * pixels.shape[2]))
    for top in range(0, pixels.shape[0], rows):  # a band at a time: the float32 array is not held twice
        out[top:top + rows] = np.rint(pixels[top:top + rows] * 255)
    return out


def _decode(path: Path, image: Image.Image, channels: int, eight_bit: bool, notes: list[str],
            dtype: np.dtype) -> np.ndarray:
    """The pixels of an opened file, ``[H, W, channels]`` as ``dtype`` (float32 in [0, 1], or uint8), oriented;
    conversions noted."""
    tiles, file_format = list(image.tile), image.format  # load() empties the tiles, transposing drops the format
    image.load()
    orientation = _orientation(image, notes)
    if _may_be_deep(image.mode, tiles):
        deep = _deep(path, _oriented(image, orientation), file_format, tiles, orientation, notes)
        if deep is not None:
            return _from_deep(*deep, channels, eight_bit, notes, dtype)
    return _eight_bit(image, channels, orientation, notes, dtype)


def embedded_icc_profile(path: str | os.PathLike) -> tuple[bytes, str] | None:
    """The ICC profile embedded in an image file, at most ``MAX_ICC_BYTES``, and the colour space of the values it
    describes: ``"RGB"``, ``"GRAY"``, ``"CMYK"``, ... (bytes 16-19 of its header, ICC.1 sec. 7.2.6); None when
    there is none or it cannot be read."""
    try:
        with open_image(path) as image:
            profile = image.info.get("icc_profile")
    except (ImageReadError, OSError):
        return None
    if isinstance(profile, bytes) and 128 <= len(profile) <= MAX_ICC_BYTES:
        return profile, profile[16:20].decode("latin-1").strip()
    return None


def read_image(path: str | os.PathLike, channels: int = 3, max_side: int | None = None,
               eight_bit: bool = False, dtype: type | np.dtype = np.float32) -> DecodedImage:
    """Decode one image file to ``[H, W, channels]`` float32 in [0, 1] (``channels`` 1 or 3).

    ``max_side``: refuse (``ImageTooLarge``) a file whose width or height exceeds it, from the header, before
    decoding. ``eight_bit``: round deeper samples to 8 bits (noted), as an 8-bit file of the same image would be.
    ``dtype``: ``np.uint8`` for the same pixels as 0-255 integers (``rint(float32 * 255)``: an 8-bit file's own
    values), decoded without ever holding the float32 array of an 8-bit file (a third of the memory).
    Raises ``ImageReadError`` (one line: path and reason) for anything that is not a usable image; a file that
    is not one of ``ALLOWED_FORMATS`` is never handed to any other reader (``open_image``).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.uint8):
        raise ValueError(f"dtype must be float32 or uint8, not {dtype}")
    path = Path(path)
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # a caller's max_side bounds the size itself, checked below from the header: Pillow's pixel-count
            # warning (89.5 megapixels) would refuse photos inside it (12000x9000); twice that stays a bomb
            warnings.simplefilter("ignore" if max_side is not None else "error", Image.DecompressionBombWarning)
            with open_image(path) as image:
                if max_side is not None and max(image.size) > max_side:
                    raise ImageTooLarge(path, image.size, max_side)
                frames = getattr(image, "n_frames", 1)
                if frames > 1:
                    notes.append(f"first of {frames} frames used")
                pixels = _decode(path, image, channels, eight_bit, notes, dtype)
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
