"""From five facial landmarks to the generator's framing: the FFHQ alignment quad, and a framing's crop of it.

The quad is the one of the FFHQ dataset's ``recreate_aligned_images`` (Karras et al., ffhq-dataset), restated
here for five points: with ``e0``, ``e1`` the eye centres, ``m0``, ``m1`` the mouth corners,

* ``eye_avg = (e0 + e1) / 2``, ``eye_to_eye = e1 - e0``, ``mouth_avg = (m0 + m1) / 2``,
  ``eye_to_mouth = mouth_avg - eye_avg``;
* ``x = eye_to_eye - flipud(eye_to_mouth) * [-1, 1]``, normalised, then scaled to
  ``max(2.0 |eye_to_eye|, 1.8 |eye_to_mouth|)``; ``y = flipud(x) * [-1, 1]`` (``x`` turned 90 degrees, pointing
  down the face); ``c = eye_avg + 0.1 eye_to_mouth``;
* the quad ``[c - x - y, c - x + y, c + x + y, c + x - y]`` (top-left, bottom-left, bottom-right, top-right) is
  the aligned image's square ``[0, S]^2``.

A *framing* is the sub-box of that square a generator was trained on, as fractions ``(x0, y0, x1, y1)`` of its
side: ``ffhq`` is all of it; ``faces64`` (the demonstration generator's training photos, see the faces64 README)
is ``(0.195, 0.297, 0.8125, 0.914)``.

Coordinates, everywhere in ``rls_lightning.photos``: continuous ``(x, y)``, x to the right, y down, the origin at
the top-left *corner* of the top-left pixel, so pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)`` and
its centre is ``(j + 0.5, i + 0.5)`` (Pillow's convention for ``resize`` and ``transform``). A crop of side
``n`` is the square ``[0, n]^2`` in its own coordinates. The FFHQ code adds 0.5 to its quad before
``Image.transform`` because dlib's landmarks count from pixel centres; landmarks here are already in the corner
convention (``detection`` converts MTCNN's), so the quad needs no shift.
"""
from __future__ import annotations

import numpy as np

# (x0, y0, x1, y1): the generator's training crop, in fractions of the side of the FFHQ-aligned square
FRAMINGS: dict[str, tuple[float, float, float, float]] = {
    "ffhq": (0.0, 0.0, 1.0, 1.0),
    "faces64": (0.195, 0.297, 0.8125, 0.914),
}


def _framing_box(framing: str | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if isinstance(framing, str):
        try:
            return FRAMINGS[framing]
        except KeyError:
            raise ValueError(f"unknown framing {framing!r}; known: {', '.join(sorted(FRAMINGS))}") from None
    box = tuple(float(v) for v in framing)
    if len(box) != 4 or not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"a framing is (x0, y0, x1, y1) with x1 > x0 and y1 > y0, not {framing!r}")
    return box  # type: ignore[return-value]


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(c, x, y)``: the centre and the two half-side vectors of the FFHQ quad (see the module docstring).

    ``landmarks``: ``[5, 2]`` photo coordinates of left eye, right eye, nose, mouth left, mouth right (the
    subject's left/right as seen in the image: the first eye is the one with the smaller x in an upright face).
    The nose is not used by the recipe.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"landmarks must be a finite [5, 2] array, got shape {points.shape}")
    e0, e1, _, m0, m1 = points
    eye_avg = (e0 + e1) / 2
    eye_to_eye = e1 - e0
    eye_to_mouth = (m0 + m1) / 2 - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * np.array([-1.0, 1.0])
    norm = np.hypot(*x)
    if norm == 0:
        raise ValueError("degenerate landmarks: the eye and mouth axes cancel out")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * np.array([-1.0, 1.0])
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def crop_to_photo_matrix(landmarks: np.ndarray, framing: str | tuple[float, float, float, float],
                         crop_size: int) -> np.ndarray:
    """``[2, 3]`` affine from crop coordinates (a crop of side ``crop_size``) to photo coordinates."""
    c, x, y = ffhq_quad(landmarks)
    fx0, fy0, fx1, fy1 = _framing_box(framing)
    # a point of the aligned square at fractions (u, v) of its side is c + (2u - 1) x + (2v - 1) y
    a_col = x * 2 * (fx1 - fx0) / crop_size
    b_col = y * 2 * (fy1 - fy0) / crop_size
    origin = c + (2 * fx0 - 1) * x + (2 * fy0 - 1) * y
    return np.stack([a_col, b_col, origin], axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a ``[2, 3]`` affine map."""
    m = np.asarray(matrix, dtype=np.float64)
    linear_inv = np.linalg.inv(m[:, :2])
    return np.concatenate([linear_inv, -linear_inv @ m[:, 2:]], axis=1)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` ``[..., 2]`` mapped by the ``[2, 3]`` affine ``matrix``."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def crop_transform(landmarks: np.ndarray, framing: str | tuple[float, float, float, float] = "faces64",
                   crop_size: int = 64) -> np.ndarray:
    """``photo_to_crop``: the ``[2, 3]`` affine from photo coordinates to the coordinates of the ``framing`` crop
    of side ``crop_size`` (both in the pixel-corner convention of the module docstring): a similarity
    (rotation, scale, translation), up to the framing box's own aspect ratio (faces64: 0.6175 x 0.617).

    ``crop = photo_to_crop @ [x, y, 1]``; the crop's pixel ``(i, j)`` samples the photo at
    ``inverse(photo_to_crop) @ [j + 0.5, i + 0.5, 1]``.
    """
    if int(crop_size) != crop_size or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer, got {crop_size!r}")
    return invert_affine(crop_to_photo_matrix(landmarks, framing, int(crop_size)))


def crop_width_in_photo(landmarks: np.ndarray,
                        framing: str | tuple[float, float, float, float] = "faces64") -> float:
    """Side of the ``framing`` crop measured in photo pixels (the length of its top edge)."""
    _, x, _ = ffhq_quad(landmarks)
    fx0, _, fx1, _ = _framing_box(framing)
    return float(np.hypot(*x) * 2 * (fx1 - fx0))


def crop_corners_in_photo(photo_to_crop: np.ndarray, crop_size: int) -> np.ndarray:
    """``[4, 2]`` photo coordinates of the crop's corners: top-left, bottom-left, bottom-right, top-right
    (the order of the FFHQ quad)."""
    n = float(crop_size)
    corners = np.array([[0.0, 0.0], [0.0, n], [n, n], [n, 0.0]])
    return apply_affine(invert_affine(photo_to_crop), corners)
