"""Cutting a face's crop out of a photo: the LR size to cut it at, and an antialiased affine resampler.

The resampler generalises what Pillow's ``Image.resize`` does with ``BICUBIC`` (Keys' cubic, ``a = -0.5``) to any
affine map: every destination pixel is a normalised weighted sum of source pixels, the weight a separable cubic
in the *destination's* axes. Where a destination pixel spans more than one source pixel along an axis (a
downscale), the kernel is stretched by that ratio, so that the result is a proper prefiltered downscale and not
an aliased point sample; where it spans less (an upscale), the kernel has its ordinary width, in source pixels,
and the result is plain bicubic interpolation. For a pure axis-aligned scale and translation this is Pillow's
``resize(size, BICUBIC, box=..., reducing_gap=None)`` away from the border, up to rounding. Destination pixels
that reach outside the source read it reflected about its edge pixels (numpy's ``reflect``: ``-1`` reads ``1``),
as the FFHQ recipe pads; Pillow instead drops the outside taps, so the two differ within 2 pixels of the border.

Coordinates are those of ``alignment``: pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``.
"""
from __future__ import annotations

import math

import numpy as np

from .alignment import invert_affine

_CUBIC_A = -0.5  # Pillow's BICUBIC
_SUPPORT = 2.0
# From twice this many source pixels per destination pixel on, the source is first box-averaged by the integer
# factor floor(scale / gap) (exact area averaging, cheap) so that the cubic window stays small: Pillow's
# ``reducing_gap``, whose documentation calls 3 indistinguishable from a fair resampling in most cases.
_REDUCING_GAP = 3.0
_STRIP_SAMPLES = 1 << 22  # source samples gathered at once (32 MB as float64)


def lr_size_for(width_in_photo: float, generator_resolution: int) -> int:
    """The side at which to cut a face whose crop is ``width_in_photo`` photo pixels wide.

    The power of two that divides ``generator_resolution`` (so the generator's output can be box-downscaled to
    it exactly), is at least 4 and at most ``generator_resolution``, and is nearest to ``width_in_photo`` in log
    scale: the photo is neither enlarged nor reduced by more than a factor sqrt(2) unless the generator's range
    forces it, and is never enlarged beyond the generator's resolution. At an exact tie the smaller side wins
    (reducing by sqrt(2) rather than inventing pixels).
    """
    if not (isinstance(width_in_photo, (int, float, np.floating, np.integer)) and math.isfinite(width_in_photo)
            and width_in_photo > 0):
        raise ValueError(f"width_in_photo must be a positive finite number, got {width_in_photo!r}")
    if int(generator_resolution) != generator_resolution or generator_resolution < 4:
        raise ValueError(f"generator_resolution must be an integer >= 4, got {generator_resolution!r}")
    res = int(generator_resolution)
    candidates = [1 << k for k in range(2, res.bit_length()) if res % (1 << k) == 0]
    if not candidates:
        raise ValueError(f"generator_resolution {res} has no power-of-two divisor >= 4")
    target = math.log2(width_in_photo)
    # sort key: distance in log2, then size, so an exact tie goes to the smaller one
    return min(candidates, key=lambda size: (abs(math.log2(size) - target), size))


def cubic_kernel(t: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (Pillow's BICUBIC), support ``[-2, 2]``."""
    t = np.abs(t)
    a = _CUBIC_A
    inner = ((a + 2) * t - (a + 3)) * t * t + 1
    outer = ((t - 5) * t + 8) * t * a - 4 * a
    return np.where(t < 1, inner, np.where(t < 2, outer, 0.0))


def reflect_indices(indices: np.ndarray, n: int) -> np.ndarray:
    """Integer indices folded into ``[0, n)`` by reflection about the edge pixels (numpy's ``reflect`` mode)."""
    if n == 1:
        return np.zeros_like(indices)
    period = 2 * (n - 1)
    folded = np.mod(indices, period)
    return np.where(folded >= n, period - folded, folded)


def _gather_region(source: np.ndarray, y0: int, y1: int, x0: int, x1: int, reduce: int = 1) -> np.ndarray:
    """``source[y0:y1, x0:x1]`` for any integer bounds, reflected where they leave the source, as float64 and
    area-averaged over ``reduce x reduce`` blocks (the bounds' extents must then be multiples of ``reduce``).

    Gathered ``_STRIP_SAMPLES`` samples at a time, so that cutting a small window out of a large photo (uint8,
    several hundred megabytes) never holds more than the window and one strip of it as float."""
    rows = reflect_indices(np.arange(y0, y1), source.shape[0])
    cols = reflect_indices(np.arange(x0, x1), source.shape[1])
    strip = reduce * max(1, _STRIP_SAMPLES // (reduce * max(1, len(cols)) * source.shape[2]))
    parts = []
    for start in range(0, len(rows), strip):
        part = source[rows[start:start + strip, None], cols[None, :]].astype(np.float64)
        parts.append(_box_reduce(part, reduce) if reduce > 1 else part)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _box_reduce(region: np.ndarray, factor: int) -> np.ndarray:
    """Area average over ``factor x factor`` blocks (the region's size must be a multiple of ``factor``)."""
    h, w = region.shape[0] // factor, region.shape[1] // factor
    return region.reshape(h, factor, w, factor, -1).mean(axis=(1, 3))


def warp_affine(source: np.ndarray, dst_to_src: np.ndarray, out_shape: tuple[int, int],
                dst_origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Resample ``source`` ``[H, W, C]`` (float, or uint8 read in its own 0-255 units) into a ``[h, w, C]``
    float64 image (see the module docstring). Only the source pixels under the output are read.

    ``dst_to_src``: ``[2, 3]`` affine from destination coordinates to source coordinates. ``out_shape``:
    ``(h, w)``. ``dst_origin``: ``(row, column)`` of the first output pixel in the destination grid, to compute a
    window of a larger destination. The result is not clipped (cubic weights can overshoot by a few percent).
    """
    src = np.asarray(source)
    if src.ndim != 3 or src.shape[0] < 1 or src.shape[1] < 1:
        raise ValueError(f"source must be [H, W, C], got shape {src.shape}")
    h, w = int(out_shape[0]), int(out_shape[1])
    m = np.asarray(dst_to_src, dtype=np.float64)
    linear = m[:, :2]
    # source pixels per destination pixel along each destination axis; > 1 is a downscale
    scale = np.hypot(linear[0], linear[1])
    if not np.all(np.isfinite(m)) or np.any(scale == 0):
        raise ValueError("dst_to_src must be a finite, invertible affine map")
    reduce = int(min(scale) // _REDUCING_GAP) if min(scale) >= 2 * _REDUCING_GAP else 1

    rows = np.arange(h, dtype=np.float64) + dst_origin[0] + 0.5
    cols = np.arange(w, dtype=np.float64) + dst_origin[1] + 0.5
    qx, qy = np.meshgrid(cols, rows)
    px = m[0, 0] * qx + m[0, 1] * qy + m[0, 2]
    py = m[1, 0] * qx + m[1, 1] * qy + m[1, 2]

    # the cubic's support in destination units per axis, then its bounding half-size in source pixels
    stretch = np.maximum(1.0, 1.0 / scale)
    half = _SUPPORT * stretch
    reach_x = abs(linear[0, 0]) * half[0] + abs(linear[0, 1]) * half[1]
    reach_y = abs(linear[1, 0]) * half[0] + abs(linear[1, 1]) * half[1]
    margin = 2 * reduce  # whole reduced pixels around the footprint
    x0 = int(math.floor((px.min() - reach_x) / reduce)) * reduce - margin
    x1 = int(math.ceil((px.max() + reach_x) / reduce)) * reduce + margin
    y0 = int(math.floor((py.min() - reach_y) / reduce)) * reduce - margin
    y1 = int(math.ceil((py.max() + reach_y) / reduce)) * reduce + margin
    region = _gather_region(src, y0, y1, x0, x1, reduce)
    # coordinates inside the (reduced) region; the reduced pixel j covers [j, j + 1) there, exactly
    px = (px - x0) / reduce
    py = (py - y0) / reduce
    lin = linear / reduce
    lin_inv = np.linalg.inv(lin)
    reach_x, reach_y = reach_x / reduce, reach_y / reduce

    base_x = np.floor(px - 0.5).astype(np.int64)
    base_y = np.floor(py - 0.5).astype(np.int64)
    rx, ry = int(math.ceil(reach_x)) + 1, int(math.ceil(reach_y)) + 1
    out = np.zeros((h, w, src.shape[2]))
    total = np.zeros((h, w))
    for oy in range(-ry + 1, ry + 1):
        iy = np.clip(base_y + oy, 0, region.shape[0] - 1)
        dy = base_y + oy + 0.5 - py
        for ox in range(-rx + 1, rx + 1):
            ix = np.clip(base_x + ox, 0, region.shape[1] - 1)
            dx = base_x + ox + 0.5 - px
            # offset of this source pixel from the destination pixel, in destination pixels
            da = lin_inv[0, 0] * dx + lin_inv[0, 1] * dy
            db = lin_inv[1, 0] * dx + lin_inv[1, 1] * dy
            weight = cubic_kernel(da / stretch[0]) * cubic_kernel(db / stretch[1])
            if not weight.any():
                continue
            out += weight[..., None] * region[iy, ix]
            total += weight
    return out / total[..., None]


def extract_crop(photo: np.ndarray, photo_to_crop: np.ndarray, size: int) -> np.ndarray:
    """The ``[size, size, 3]`` float32 crop of ``photo`` (float ``[H, W, 3]`` in ``[0, 1]``, or uint8) that
    ``photo_to_crop`` (``[2, 3]``, photo coordinates to crop coordinates, ``alignment.crop_transform``) defines:
    antialiased, reflect-padded where the crop leaves the photo, clipped to ``[0, 1]``."""
    image = np.asarray(photo)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"photo must be [H, W, 3], got shape {image.shape}")
    crop = warp_affine(image, invert_affine(photo_to_crop), (int(size), int(size)))
    if image.dtype == np.uint8:
        crop /= 255.0
    return np.clip(crop, 0.0, 1.0).astype(np.float32)
