"""Synthetic photos with known geometry, for the tests and ``scripts/measure_photo_alignment.py``: square face
images (in the generator's framing) placed into a background by known similarity transforms.

Rendered with Pillow only, independently of ``crop.warp_affine``, so that a mistake in the resampler cannot cancel
out against the same mistake in the ground truth: each face is warped by ``Image.transform`` at ``supersample``
times the photo's resolution (enlarging it, so no aliasing), laid over the background with a warped opacity
mask, and the whole photo is then reduced by ``supersample`` with Pillow's antialiased ``reduce`` (box average),
which maps photo coordinates to supersampled ones by an exact factor (pixel-corner convention).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image

from .alignment import apply_affine

_PAD = 4


@dataclasses.dataclass(frozen=True)
class Placement:
    """A face image of side ``face_size`` put into a photo: ``face_to_photo`` ``[2, 3]`` (face image coordinates to
    photo coordinates, pixel-corner convention)."""

    face_to_photo: np.ndarray
    face_size: int

    def corners(self) -> np.ndarray:
        """``[4, 2]`` photo coordinates of the face square: top-left, bottom-left, bottom-right, top-right."""
        n = float(self.face_size)
        return apply_affine(self.face_to_photo, np.array([[0.0, 0.0], [0.0, n], [n, n], [n, 0.0]]))

    @property
    def width(self) -> float:
        """Side of the face square in photo pixels."""
        return float(np.hypot(*self.face_to_photo[:, 0]) * self.face_size)


def similarity(width: float, face_size: int, angle_degrees: float, centre: tuple[float, float]) -> np.ndarray:
    """``face_to_photo`` putting a ``face_size`` square at ``width`` photo pixels, turned ``angle_degrees``
    counter-clockwise as seen on screen, its centre at ``centre`` (photo coordinates)."""
    s = width / face_size
    t = math.radians(angle_degrees)
    # y points down, so a counter-clockwise turn on screen is a negative angle in these coordinates
    linear = s * np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    offset = np.asarray(centre, dtype=np.float64) - linear @ np.array([face_size / 2, face_size / 2])
    return np.concatenate([linear, offset[:, None]], axis=1)


def background(height: int, width: int, rng: np.random.Generator, kind: str | None = None) -> np.ndarray:
    """A faceless ``[height, width, 3]`` uint8 background: ``smooth`` (low-frequency colour noise),
    ``gradient``, ``noise`` (white noise), ``texture`` (mid-frequency noise and stripes) or ``flat``."""
    kind = kind or str(rng.choice(["smooth", "gradient", "noise", "texture", "flat"]))
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    if kind == "smooth":
        coarse = rng.random((4, 4, 3)).astype(np.float32)
        image = np.stack([np.asarray(Image.fromarray(coarse[..., c], "F").resize((width, height), Image.BICUBIC))
                          for c in range(3)], axis=-1)
    elif kind == "gradient":
        a, b = rng.random(3), rng.random(3)
        direction = rng.normal(size=2)
        t = (xx * direction[0] + yy * direction[1])
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        image = a + (b - a) * t[..., None]
    elif kind == "noise":
        image = rng.random((height, width, 3))
    elif kind == "texture":
        cells = max(2, min(height, width) // 6)
        coarse = rng.random((cells, cells, 3)).astype(np.float32)
        image = np.stack([np.asarray(Image.fromarray(coarse[..., c], "F").resize((width, height), Image.BICUBIC))
                          for c in range(3)], axis=-1)
        period, angle = rng.uniform(4, 16), rng.uniform(0, math.pi)
        stripes = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * math.cos(angle) + yy * math.sin(angle))
                                     * max(height, width) / period)
        image = 0.7 * image + 0.3 * stripes[..., None]
    elif kind == "flat":
        image = np.broadcast_to(rng.random(3), (height, width, 3))
    else:
        raise ValueError(f"unknown background kind {kind!r}")
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def compose(backdrop: np.ndarray, faces: list[np.ndarray], placements: list[Placement],
            supersample: int = 4) -> np.ndarray:
    """``backdrop`` (uint8 ``[H, W, 3]``) with each face (uint8 ``[n, n, 3]``) placed by its ``Placement``, in
    order, as a uint8 photo of the same size."""
    h, w = backdrop.shape[:2]
    k = int(supersample)
    big = Image.fromarray(np.ascontiguousarray(backdrop)).resize((w * k, h * k), Image.NEAREST)
    for face, placement in zip(faces, placements):
        n = face.shape[0]
        if face.shape[:2] != (n, n) or placement.face_size != n:
            raise ValueError("faces must be square and match their placement's face_size")
        to_big = placement.face_to_photo * k
        linear_inv = np.linalg.inv(to_big[:, :2])
        back = np.concatenate([linear_inv, -linear_inv @ to_big[:, 2:]], axis=1)  # big photo -> face
        # the face is edge-padded so that the cubic taps at its border read face colours, not Pillow's black fill
        padded = np.pad(face, ((_PAD, _PAD), (_PAD, _PAD), (0, 0)), mode="edge")
        shifted = back + np.array([[0.0, 0.0, _PAD], [0.0, 0.0, _PAD]])
        warped = Image.fromarray(padded).transform(big.size, Image.AFFINE, tuple(shifted.reshape(-1)),
                                                   Image.BICUBIC)
        mask = Image.new("L", (n, n), 255).transform(big.size, Image.AFFINE, tuple(back.reshape(-1)),
                                                     Image.BILINEAR)
        big.paste(warped, (0, 0), mask)
    return np.asarray(big.reduce(k))
