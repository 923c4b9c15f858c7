"""Putting super-resolved faces back into the photo: the plain enlargement, and each face through the inverse of
its crop transform, blended with a feathered mask.

Geometry (pixel-corner convention of ``alignment``): enlarging a photo by ``u`` maps photo point ``p`` to ``u p``
exactly (Pillow's ``resize`` maps the image's edges onto the new edges). A face cut at ``crop_size`` and
super-resolved to ``R`` is the same square at ``R / crop_size`` times the resolution. So the enlarged photo's
point ``q`` shows the SR face's point ``(R / crop_size) * photo_to_crop(q / u)``; each enlarged pixel inside the
face square samples the SR face there (``crop.warp_affine``: antialiased bicubic, reflect-padded at the square's
edge, where the mask is 0 anyway).

Mask, in the face square's own coordinates ``(a, b)`` as fractions of its side: ``ramp(a) * ramp(b)`` with
``ramp(t) = smoothstep(min(t, 1 - t) / feather)`` (``smoothstep(s) = 3s^2 - 2s^3`` clipped to ``[0, 1]``): 0 on
and outside the square's edges, rising smoothly to 1 at ``feather`` of the side inside each edge (default 1/8:
in the faces64 framing that reaches the forehead, cheeks and chin, not the eyes or mouth), 1 in the middle.
Faces are composited in order, each over the result so far: ``out = (1 - m) out + m face`` where ``m > 0``.
Where every mask is 0 the output *is* the enlarged photo, bit for bit.
"""
from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from .alignment import invert_affine
from .crop import warp_affine

DEFAULT_FEATHER = 0.125
_BAND_SAMPLES = 1 << 20  # samples of the enlarged photo computed at once (4 MB as float32)


def enlarge(photo: np.ndarray, upscale: int) -> np.ndarray:
    """``photo`` (float ``[H, W, 3]`` in ``[0, 1]``, or uint8) enlarged ``upscale`` times with Pillow's bicubic
    filter (each channel in 32-bit float, so not rounded to 8 bits), clipped to ``[0, 1]``: float32
    ``[H u, W u, 3]``."""
    return enlarge_rows(photo, upscale, 0, np.asarray(photo).shape[0] * int(upscale))


def enlarge_rows(photo: np.ndarray, upscale: int, first: int, last: int) -> np.ndarray:
    """Rows ``first`` to ``last`` (excluded) of ``enlarge(photo, upscale)``, computed from the few photo rows
    under them: Pillow's ``resize`` with a ``box`` maps output rows to the same source positions and weights as
    the whole enlargement does (its bicubic reaches 2 source rows either side; 3 are read), so the rows are
    the whole enlargement's: bit for bit when ``1 / upscale`` is exact in binary, else up to float32 rounding
    of the positions (1e-7, tested)."""
    image = np.asarray(photo)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"photo must be [H, W, 3], got shape {image.shape}")
    u = int(upscale)
    if u != upscale or u < 1:
        raise ValueError(f"upscale must be a positive integer, got {upscale!r}")
    h, w = image.shape[:2]
    if not 0 <= first < last <= h * u:
        raise ValueError(f"rows {first} to {last} are not inside the {h * u} rows of the enlargement")
    y0, y1 = max(0, first // u - 3), min(h, -(-last // u) + 3)
    source = image[y0:y1].astype(np.float32)
    if image.dtype == np.uint8:
        source /= np.float32(255)
    if u == 1:
        return np.clip(source[first - y0:last - y0], 0.0, 1.0)
    box = (0, first / u - y0, w, last / u - y0)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(source[..., c]), "F")
                           .resize((w * u, last - first), Image.BICUBIC, box=box)) for c in range(3)]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0)


def restored_bands(photo: np.ndarray, faces: Sequence[tuple[np.ndarray, np.ndarray, int]], upscale: int,
                   band_rows: int | None = None) -> Iterator[np.ndarray]:
    """The restored photo (``paste_back(enlarge(photo, upscale), faces, upscale)`` as uint8) a band of rows at a
    time, top to bottom, so that a large photo is never held enlarged: each band is at most ``band_rows`` rows
    (default: about ``_BAND_SAMPLES`` samples)."""
    h, w = np.asarray(photo).shape[:2]
    u = int(upscale)
    band = band_rows or max(1, _BAND_SAMPLES // (w * u * 3))
    for first in range(0, h * u, band):
        last = min(h * u, first + band)
        rows = enlarge_rows(photo, u, first, last)
        if faces:
            rows = paste_back(rows, faces, u, first_row=first)
        yield (np.clip(rows, 0, 1) * 255).round().astype(np.uint8)


def _smoothstep(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def feather_mask(a: np.ndarray, b: np.ndarray, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """The blending weight at face-square coordinates ``(a, b)`` (fractions of the side; see the module
    docstring). Exactly 0 wherever ``a`` or ``b`` is outside ``(0, 1)``."""
    if not 0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5], got {feather!r}")

    def ramp(t: np.ndarray) -> np.ndarray:
        return _smoothstep(np.minimum(t, 1.0 - t) / feather)

    return ramp(a) * ramp(b)


def paste_back(enlarged_photo: np.ndarray, faces: Sequence[tuple[np.ndarray, np.ndarray, int]], upscale: int,
               feather: float = DEFAULT_FEATHER, first_row: int = 0) -> np.ndarray:
    """``enlarged_photo`` (float ``[H u, W u, 3]``, normally ``enlarge(photo, u)``, or the band of its rows from
    ``first_row`` on) with each face of ``faces`` pasted in, in order: ``(sr_face [R, R, 3] float in [0, 1],
    photo_to_crop [2, 3], crop_size)``, where ``photo_to_crop`` is the transform the face was cut with
    (``alignment.crop_transform``) at ``crop_size``. Returns a new float32 array; pixels outside every face's
    mask equal ``enlarged_photo``'s exactly."""
    out = np.array(enlarged_photo, dtype=np.float32, copy=True)
    if out.ndim != 3 or out.shape[2] != 3:
        raise ValueError(f"enlarged_photo must be [H, W, 3], got shape {out.shape}")
    u = float(upscale)
    band_h, big_w = out.shape[:2]
    for sr_face, photo_to_crop, crop_size in faces:
        face = np.asarray(sr_face, dtype=np.float64)
        r = face.shape[0]
        if face.ndim != 3 or face.shape[:2] != (r, r) or face.shape[2] != 3:
            raise ValueError(f"an SR face must be [R, R, 3], got shape {face.shape}")
        # enlarged photo -> SR face: undo the enlargement, cut as the crop was, then scale to R
        to_crop = np.asarray(photo_to_crop, dtype=np.float64)
        big_to_face = (r / crop_size) * np.concatenate([to_crop[:, :2] / u, to_crop[:, 2:]], axis=1)
        face_to_big = invert_affine(big_to_face)
        corners = np.array([[0, 0], [0, r], [r, r], [r, 0]], dtype=np.float64) @ face_to_big[:, :2].T
        corners += face_to_big[:, 2]
        # only the enlarged pixels whose centres can fall inside the square
        x0 = max(0, math.floor(corners[:, 0].min()))
        x1 = min(big_w, math.ceil(corners[:, 0].max()) + 1)
        y0 = max(first_row, math.floor(corners[:, 1].min()))
        y1 = min(first_row + band_h, math.ceil(corners[:, 1].max()) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        cols = np.arange(x0, x1) + 0.5
        rows = np.arange(y0, y1) + 0.5
        qx, qy = np.meshgrid(cols, rows)
        fa = (big_to_face[0, 0] * qx + big_to_face[0, 1] * qy + big_to_face[0, 2]) / r
        fb = (big_to_face[1, 0] * qx + big_to_face[1, 1] * qy + big_to_face[1, 2]) / r
        mask = feather_mask(fa, fb, feather)
        inside = mask > 0
        if not inside.any():
            continue
        sampled = np.clip(warp_affine(face, big_to_face, (y1 - y0, x1 - x0), dst_origin=(y0, x0)), 0.0, 1.0)
        region = out[y0 - first_row:y1 - first_row, x0:x1].astype(np.float64)
        blended = region + mask[..., None] * (sampled - region)
        # only where the mask is positive, so that every other pixel keeps its bits
        out[y0 - first_row:y1 - first_row, x0:x1] = np.where(inside[..., None], blended, region).astype(np.float32)
    return out
