"""PNG files written byte by byte, for the image reader's tests and the hostile corpus: 16-bit samples that Pillow
cannot write, a blank image too large to hold, and a decompression bomb a few hundred bytes long."""
import struct
import zlib
from pathlib import Path

import numpy as np


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def write_png16(path: Path, samples: np.ndarray) -> None:
    """A 16-bit PNG (gray, RGB or RGBA from ``[H, W, 1|3|4]`` uint16), written byte by byte (Pillow cannot
    write 48-bit RGB); row y uses PNG filter y % 5, so that every filter is decoded with 6- or 8-byte pixels."""
    h, w, c = samples.shape
    raw = np.frombuffer(samples.astype(">u2").tobytes(), np.uint8).reshape(h, -1).astype(int)
    bpp = 2 * c
    body, prev = bytearray(), np.zeros(raw.shape[1], int)
    for y, row in enumerate(raw):
        left = np.concatenate([np.zeros(bpp, int), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, int), prev[:-bpp]])
        predictors = [0, left, prev, (left + prev) // 2,
                      np.array([_paeth(a, b, d) for a, b, d in zip(left, prev, up_left)])]
        body.append(y % 5)
        body += bytes(((row - predictors[y % 5]) % 256).astype(np.uint8))
        prev = row
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(body))
                     + png_chunk(b"IEND", b""))


def write_blank_png(path: Path, side: int) -> None:
    """A ``side`` x ``side`` black RGB PNG, compressed row by row (the test never holds its pixels)."""
    packer, row = zlib.compressobj(1), b"\x00" * (1 + 3 * side)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b""))


def write_png_bomb(path: Path, side: int = 30000) -> None:
    """A PNG declaring ``side`` x ``side`` gray pixels (900 M at 30000: 10 times Pillow's bomb limit) in a few
    hundred bytes, its first rows of zeros; a decoder that trusted the header would allocate gigabytes."""
    rows = zlib.compress(b"\x00" * (1 + side) * 8, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b""))
