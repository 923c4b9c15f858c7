"""Writing a large RGB or gray PNG a band of rows at a time, so that a restored photo is never held whole in memory.

The file is the PNG specification's (ISO/IEC 15948, W3C PNG 2nd edition) simplest conforming form: 8-bit
truecolour or greyscale (colour type 2 or 0), no interlace, one zlib stream split over IDAT chunks. Each row is
filtered with the one of the five filter types (sec. 9.2: None, Sub, Up, Average, Paeth) whose output has the
smallest sum of absolute values as signed bytes, the heuristic the specification suggests (sec. 12.8) and libpng
uses, so files are about as small as Pillow's. It is written under a temporary name and renamed when complete
(``atomic.atomic_write_path``): the target is either absent or whole.
"""
from __future__ import annotations

import os
import struct
import zlib
from typing import Iterable

import numpy as np

from ..atomic import atomic_write_path

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_BYTES = 1 << 20  # compressed bytes per IDAT chunk
_FILTER_SAMPLES = 1 << 18  # samples filtered at once (each held as five int16 candidates)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def filter_rows(rows: np.ndarray, above: np.ndarray, channels: int = 3) -> np.ndarray:
    """``rows`` (uint8 ``[n, W * channels]``, raw scanlines) filtered, each prefixed with its filter type byte:
    ``[n, 1 + W * channels]``. ``above``: the raw scanline before the first (zeros for the image's first row);
    the filters' "left" neighbour is ``channels`` bytes back."""
    x = rows.astype(np.int16)
    b = np.concatenate([above[None].astype(np.int16), x[:-1]])  # the row above
    a = np.zeros_like(x)
    a[:, channels:] = x[:, :-channels]  # the pixel to the left
    c = np.zeros_like(x)
    c[:, channels:] = b[:, :-channels]  # above and left
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    candidates = np.stack([x, x - a, x - b, x - (a + b) // 2, x - paeth]) & 0xFF  # [5, n, W*3]
    signed = np.where(candidates >= 128, 256 - candidates, candidates)
    best = signed.sum(axis=2, dtype=np.int64).argmin(axis=0)  # [n]
    chosen = np.take_along_axis(candidates, best[None, :, None], axis=0)[0]
    return np.concatenate([best[:, None], chosen], axis=1).astype(np.uint8)


def write_png_bands(path: str | os.PathLike, width: int, height: int, bands: Iterable[np.ndarray],
                    level: int = 6, icc_profile: bytes | None = None, gray: bool = False) -> None:
    """Write the ``height x width`` RGB image whose rows ``bands`` yields, top to bottom, as uint8
    ``[rows, width, 3]`` arrays, to ``path`` (atomically), with ``icc_profile`` (the ICC profile's bytes, of an RGB
    profile, or of a gray one with ``gray``) as its iCCP chunk (sec. 11.3.3.3: before the image data, the profile
    zlib-compressed). ``gray``: a greyscale PNG of the first channel (for bands whose three channels are equal).
    Raises ``ValueError`` (and leaves nothing) when the bands do not add up to the size."""
    channels = 1 if gray else 3
    with atomic_write_path(path) as tmp, open(tmp, "wb") as out:
        out.write(_SIGNATURE)
        out.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0 if gray else 2, 0, 0, 0)))
        if icc_profile:
            out.write(_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc_profile)))
        compressor = zlib.compressobj(level)
        above = np.zeros(width * channels, dtype=np.uint8)
        pending = b""
        written = 0
        for band in bands:
            band = np.asarray(band)
            if band.dtype != np.uint8 or band.ndim != 3 or band.shape[1:] != (width, 3):
                raise ValueError(f"a band must be uint8 [rows, {width}, 3], got {band.dtype} {band.shape}")
            if written + band.shape[0] > height:
                raise ValueError(f"more than the {height} rows announced")
            raw = np.ascontiguousarray(band[..., :channels]).reshape(band.shape[0], -1)
            step = max(1, _FILTER_SAMPLES // raw.shape[1])  # the five candidates of a few rows at a time
            for start in range(0, raw.shape[0], step):
                pending += compressor.compress(filter_rows(raw[start:start + step], above, channels).tobytes())
                above = raw[min(start + step, raw.shape[0]) - 1].copy()
            written += band.shape[0]
            while len(pending) >= _CHUNK_BYTES:
                out.write(_chunk(b"IDAT", pending[:_CHUNK_BYTES]))
                pending = pending[_CHUNK_BYTES:]
        if written != height:
            raise ValueError(f"{written} rows written of the {height} announced")
        pending += compressor.flush()
        for start in range(0, len(pending), _CHUNK_BYTES):
            out.write(_chunk(b"IDAT", pending[start:start + _CHUNK_BYTES]))
        out.write(_chunk(b"IEND", b""))

