"""Finding faces and their five landmarks in a photo: facenet-pytorch's MTCNN (Zhang et al. 2016), on the CPU.

MTCNN's P-, R- and O-net weights ship inside the facenet-pytorch wheel (``facenet_pytorch/data/*.pt``), so
nothing is downloaded. Its smallest face is set by ``min_face_size`` (default 20 px) and its landmarks come from
a 48 x 48 resample of each face box, so tiny faces are found, and located, on an enlarged copy of the photo:

1. *search*: the photo is enlarged (Pillow bicubic) by ``search_upsample(...)`` so that a face whose box is
   ``min_face_px`` photo pixels wide is ``SEARCH_FACE_PX`` pixels wide, within a pixel budget;
2. *refine* (optional): every face found is cut out again around its box, resampled (antialiased bicubic,
   ``crop.warp_affine``) so that the box is 48 and 96 px wide (``REFINE_FACE_PX``), and detected again on each
   window and on its mirror image; the landmarks of these four views (the mirrors' flipped back, left and right
   swapped) are averaged, which cancels much of the detector's left-right asymmetric error.

Measured on real faces (``scripts/measure_photo_alignment.py``, 200 held-out faces per width): the search's
enlargement raises the share of faces found at crop width 12 px from 58% (MTCNN on the photo as it is) to
88.5%, at 16 px from 87.5 to 97.5%. Bringing the smallest box to 40 px (4x for the default 10 px) is the knee: at
12 px (60 faces) 2x finds 57%, 3x 85% but only 73% with a score >= 0.9 (4x: 80%), 6x no more than 4x at twice
the cost. The refinement lowers the mean corner error at 16 px from 1.01 to 0.96 LR px and, against the
pipeline's own answer on a large rendering of the same face, from 0.82 to 0.71 LR px (p95 1.83 to 1.45).

What is a face (``rejection``; ``scripts/measure_photo_detection.py``). MTCNN's score alone is not enough: on 22
real photos with 44 faces and 29 real photos without one, a ceiling-lamp bulb 8 px wide scored 0.965 and a dark
edge 0.981, and reduced so that its faces are 24 px wide, a hand on a shoulder scored 0.973. A detection is taken
for a face when (1) its score is at least ``min_score``; (2) it is at least ``MIN_FACE_WIDTH_PX`` wide (faces64
crop width from its landmarks; below it MTCNN finds a fifth of real faces, and the lamp was 8.2 px); (3) the
refinement finds it again in at least ``MIN_VIEWS`` of its four views (every real face measured was found in all
four, the hand in two, the lamp and every other false detection in at most one); (4) its landmarks lie within
``GEOMETRY_BOUNDS``, ranges about twice as wide as those of 816 real faces (MTCNN's landmarks are face-shaped even
on a lamp, so this only catches degenerate ones). With the default score 0.9: no false detection on any of those
photos, at full size or reduced (largest face 32, 24, 16, 12 px); every face at full size and at 32 px found; of
held-out faces64 faces placed in synthetic photos, 76% found at crop width 12 px, 92% at 16, 99% at 32. Jigsaws of
face tiles (eyes and mouths shuffled) still pass twice in 220 synthetic faceless photos.

Large photos (more than ``SEARCH_MAX_PIXELS``) are searched in tiles (``_search_large``), so that detection
never holds more than a tile's worth of MTCNN's maps (about 0.7 GB for a 2048 px tile).

Coordinates are converted to the pixel-corner convention of ``alignment``: MTCNN's points and boxes count from
the centre of the first pixel as 1 (the MATLAB original's convention, kept by the port; measured here with a
mirror test: ``x(image) + x(mirror) - W`` averages +1.2 to +1.4 input pixels over 200 faces at three scales,
where the corner convention gives 0 and a 1-based one +1), so 0.5 is subtracted. Since the final landmarks come
from the refinement windows, a mistake in that offset would be a fixed fraction of the face (one window pixel
is 1/48 or 1/96 of the box), and the mirror views cancel it along x.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import torch
from PIL import Image

from .alignment import crop_width_in_photo
from .crop import warp_affine

# MTCNN's coordinates minus this are in the pixel-corner convention (see the module docstring)
_MTCNN_OFFSET = 0.5
# the search pass enlarges the photo so that the smallest face sought has a box this wide
SEARCH_FACE_PX = 40.0
# ...but never beyond this many pixels (the pass costs about 0.5 s per enlarged megapixel on one shared CPU core)
SEARCH_MAX_PIXELS = 6_000_000
SEARCH_MAX_UPSAMPLE = 8.0
_BATCH = 16  # images per MTCNN call (its P-net maps of a batch are held at once)
# larger photos are searched in tiles of at most this side (about the pixels of the small photos' pass)
SEARCH_TILE = 2048
# the refinement windows: the face box resampled to each of these widths, in a square window this many
# boxes wide
REFINE_FACE_PX: tuple[float, ...] = (48.0, 96.0)
REFINE_WINDOW_BOXES = 2.0
# average the window's landmarks with its mirror image's (off only to measure what the mirror buys)
_REFINE_MIRROR = True
# MTCNN's stage thresholds (P-, R-, O-net); its default, so scores below 0.7 never come out
_THRESHOLDS = (0.6, 0.7, 0.7)
# the default ``min_score``: with the checks below (module docstring, "What is a face"), 0.9 leaves no false
# detection on real photos and finds more small faces than 0.95 (faces64 at crop width 12 px: 76% against 64%)
DEFAULT_MIN_SCORE = 0.9
DEFAULT_MIN_FACE_PX = 10.0
# the checks beyond the score (``rejection``), from scripts/measure_photo_detection.py (module docstring)
MIN_FACE_WIDTH_PX = 10.0
MIN_VIEWS = 3
GEOMETRY_BOUNDS: dict[str, tuple[float, float]] = {
    "eye distance / box width": (0.2, 0.75),
    "mouth below the eyes / eye distance": (0.5, 2.6),
    "mouth width / eye distance": (0.35, 1.6),
    "nose between eyes and mouth": (0.1, 1.0),
    "nose off the middle / eye distance": (-1.0, 1.0),
    "mouth line turned from the eye line (degrees)": (-12.0, 12.0),
}


@dataclasses.dataclass(frozen=True, eq=False)  # compared by identity: == on arrays has no single truth value
class Detection:
    """One face: ``box`` ``(x0, y0, x1, y1)`` and ``landmarks`` ``[5, 2]`` (left eye, right eye, nose, mouth left,
    mouth right, "left" meaning smaller x in an upright face) in photo pixels, pixel-corner convention; ``score``:
    MTCNN's O-net face probability (of the search pass)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    views: int = 0  # refinement views (of ``refinement_views()``) in which MTCNN found the face again

    @property
    def size(self) -> float:
        """The box's geometric-mean side, in photo pixels."""
        return float(math.sqrt(max(self.box[2] - self.box[0], 0) * max(self.box[3] - self.box[1], 0)))


@functools.lru_cache(maxsize=4)
def _mtcnn(min_face_size: int):
    """One MTCNN per minimum face size, built once (the three nets are tiny, about 2 MB together)."""
    from facenet_pytorch import MTCNN

    return MTCNN(min_face_size=min_face_size, thresholds=list(_THRESHOLDS), keep_all=True, device="cpu").eval()


def _as_uint8(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or 0 in array.shape:
        raise ValueError(f"expected a PIL image or a uint8 [H, W, 3] array, got {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def search_upsample(height: int, width: int, min_face_px: float) -> float:
    """The factor the search pass enlarges a ``height x width`` photo by (see the module docstring): enough to
    bring a box of ``min_face_px`` to ``SEARCH_FACE_PX``, at most ``SEARCH_MAX_UPSAMPLE``, within
    ``SEARCH_MAX_PIXELS``, and at least 1 (the photo is never reduced)."""
    wanted = min(SEARCH_FACE_PX / min_face_px, SEARCH_MAX_UPSAMPLE)
    budget = math.sqrt(SEARCH_MAX_PIXELS / (height * width))
    return max(1.0, min(wanted, budget))


def _detect_batch(images: np.ndarray, min_face_size: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """MTCNN on a ``[N, H, W, 3]`` uint8 batch: per image ``(boxes [K, 4], scores [K], landmarks [K, 5, 2])`` in the
    pixel-corner convention of that image."""
    boxes, scores, points = [], [], []
    with torch.inference_mode():
        for start in range(0, len(images), _BATCH):  # a crowd's refinement windows, a few at a time
            b, s, p = _mtcnn(int(min_face_size)).detect(images[start:start + _BATCH], landmarks=True)
            boxes += list(b)
            scores += list(s)
            points += list(p)
    out = []
    for b, s, p in zip(boxes, scores, points):
        if b is None:
            out.append((np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))))
        else:
            out.append((np.asarray(b, dtype=np.float64) - _MTCNN_OFFSET, np.asarray(s, dtype=np.float64),
                        np.asarray(p, dtype=np.float64) - _MTCNN_OFFSET))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of box ``a`` [4] with boxes ``b`` [K, 4]."""
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda r: np.clip(r[..., 2] - r[..., 0], 0, None) * np.clip(r[..., 3] - r[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def _search(photo: np.ndarray, min_face_px: float, upsample: float | None) -> list[Detection]:
    h, w = photo.shape[:2]
    up = search_upsample(h, w, min_face_px) if upsample is None else float(upsample)
    if up <= 1 and h * w > SEARCH_MAX_PIXELS:
        return _search_large(photo)
    big = photo
    if up > 1:
        big = np.asarray(Image.fromarray(photo).resize((round(w * up), round(h * up)), Image.BICUBIC))
    sx, sy = big.shape[1] / w, big.shape[0] / h  # exact factors of the rounded size, corner to corner
    # MTCNN's pyramid starts where its 12 px P-net window covers min_face; no face is larger than the photo
    min_face = min(max(12, int(min_face_px * min(sx, sy))), min(big.shape[:2]))
    if min_face < 12:  # smaller than P-net's window even enlarged: MTCNN has no scale to look at
        return []
    boxes, scores, points = _detect_batch(big[None], min_face)[0]
    scale = np.array([sx, sy])
    return [Detection(box=b / np.tile(scale, 2), score=float(s), landmarks=p / scale)
            for b, s, p in zip(boxes, scores, points)]


def box_reduced(photo: np.ndarray, factor: int) -> np.ndarray:
    """``photo`` (uint8 ``[H, W, 3]``) area-averaged over ``factor x factor`` blocks, the last partial row and
    column of blocks left out, as uint8; computed a band of blocks at a time (bounded memory)."""
    h, w = photo.shape[0] // factor * factor, photo.shape[1] // factor * factor
    band = factor * max(1, (1 << 22) // (factor * factor * max(1, w // factor) * 3))
    out = np.empty((h // factor, w // factor, 3), dtype=np.uint8)
    for y in range(0, h, band):
        block = photo[y:min(y + band, h), :w].astype(np.float32)
        rows = block.shape[0] // factor
        out[y // factor:y // factor + rows] = (block.reshape(rows, factor, w // factor, factor, 3).mean(axis=(1, 3))
                                              + 0.5).astype(np.uint8)
    return out


def _search_large(photo: np.ndarray) -> list[Detection]:
    """The search pass on a photo of more than ``SEARCH_MAX_PIXELS``, in bounded memory and at full resolution.

    MTCNN runs on overlapping tiles of at most ``SEARCH_TILE`` px (each of them no more than the small photos'
    pass costs) and on the whole photo box-reduced by an integer ``k`` to within ``SEARCH_MAX_PIXELS``. The
    reduced pass sees every face whose box is at least ``SEARCH_FACE_PX`` reduced pixels wide (the size the small
    photos' search brings its smallest faces to), so the tiles overlap by ``SEARCH_FACE_PX * k``: every smaller
    face lies whole inside the tile whose core (the tile less half the overlap on each inner side) holds its box
    centre. A tile keeps only such faces, and none touching one of its inner edges (a face cut in two); a face
    found by both passes, or a part of a large face inside its box, is kept once (the higher score)."""
    h, w = photo.shape[:2]
    k = math.ceil(math.sqrt(h * w / SEARCH_MAX_PIXELS))
    overlap = int(math.ceil(SEARCH_FACE_PX * k))
    small = box_reduced(photo, k)
    found: list[Detection] = []
    if min(small.shape[:2]) >= 12:
        boxes, scores, points = _detect_batch(small[None], 12)[0]
        found += [Detection(box=b * k, score=float(s), landmarks=p * k) for b, s, p in zip(boxes, scores, points)]
    stride = SEARCH_TILE - overlap
    for y0 in range(0, max(1, h - overlap), stride):
        for x0 in range(0, max(1, w - overlap), stride):
            y1, x1 = min(h, y0 + SEARCH_TILE), min(w, x0 + SEARCH_TILE)
            boxes, scores, points = _detect_batch(np.ascontiguousarray(photo[y0:y1, x0:x1])[None], 12)[0]
            # the core: [x0 + overlap / 2, x1 - overlap / 2), reaching the photo's edge where the tile does
            lo = np.array([x0 + overlap / 2 if x0 > 0 else -np.inf, y0 + overlap / 2 if y0 > 0 else -np.inf])
            hi = np.array([x1 - overlap / 2 if x1 < w else np.inf, y1 - overlap / 2 if y1 < h else np.inf])
            inner_lo = np.array([x0 + 1 if x0 > 0 else -np.inf, y0 + 1 if y0 > 0 else -np.inf])
            inner_hi = np.array([x1 - 1 if x1 < w else np.inf, y1 - 1 if y1 < h else np.inf])
            for b, s, p in zip(boxes, scores, points):
                box, marks = b + np.array([x0, y0, x0, y0]), p + np.array([x0, y0])
                centre = (box[:2] + box[2:]) / 2
                if np.all(centre >= lo) and np.all(centre < hi) and np.all(box[:2] > inner_lo) \
                        and np.all(box[2:] < inner_hi):
                    found.append(Detection(box=box, score=float(s), landmarks=marks))
    return _merge(found)


def _merge(found: list[Detection]) -> list[Detection]:
    """Detections that cover the same face kept once, the highest score first: a box overlapping a kept one by
    more than half of the smaller of the two is dropped."""
    kept: list[Detection] = []
    for det in sorted(found, key=lambda d: -d.score):
        if kept:
            others = np.stack([k.box for k in kept])
            x0, y0 = np.maximum(det.box[0], others[:, 0]), np.maximum(det.box[1], others[:, 1])
            x1, y1 = np.minimum(det.box[2], others[:, 2]), np.minimum(det.box[3], others[:, 3])
            inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
            areas = np.minimum(det.size ** 2, np.array([k.size ** 2 for k in kept]))
            if np.any(inter > 0.5 * np.maximum(areas, 1e-12)):
                continue
        kept.append(det)
    return kept


def _window_views(source: np.ndarray, found: list[Detection], face_px: float) -> list[list[tuple]]:
    """Per detection, the ``(box [4], landmarks [5, 2])`` (photo coordinates) that MTCNN finds on a window
    around it in which its box is ``face_px`` wide, and on that window's mirror image."""
    side = int(round(face_px * REFINE_WINDOW_BOXES))
    windows, to_photo = [], []
    for det in found:
        centre = (det.box[:2] + det.box[2:]) / 2
        s = max(det.size, 1.0) / face_px  # photo pixels per window pixel
        # window -> photo: a scale about the box centre, which lands on the window's centre
        matrix = np.array([[s, 0.0, centre[0] - s * side / 2], [0.0, s, centre[1] - s * side / 2]])
        window = warp_affine(source, matrix, (side, side))  # uint8 source: 0-255 units
        windows.append((np.clip(window, 0, 255) + 0.5).astype(np.uint8))
        to_photo.append(matrix)
    mirrors = [np.ascontiguousarray(wnd[:, ::-1]) for wnd in windows] if _REFINE_MIRROR else []
    results = _detect_batch(np.stack(windows + mirrors), int(face_px / 2))
    low, high = side / 2 - face_px / 2, side / 2 + face_px / 2
    centre_box = np.array([low, low, high, high])
    views: list[list[tuple]] = []
    for i in range(len(found)):
        these = []
        for j in (i, i + len(found))[:2 if _REFINE_MIRROR else 1]:
            boxes, _, points = results[j]
            if not len(boxes):
                continue
            if j >= len(found):  # back to the unmirrored window: x -> side - x, and left and right swap
                boxes = np.stack([side - boxes[:, 2], boxes[:, 1], side - boxes[:, 0], boxes[:, 3]], axis=1)
                points = points[:, [1, 0, 2, 4, 3]] * np.array([-1.0, 1.0]) + np.array([side, 0.0])
            overlap = _iou(centre_box, boxes)
            k = int(np.argmax(overlap))
            if overlap[k] >= 0.3:  # the face the window was cut around, not a neighbour
                m = to_photo[i]
                # the window is an axis-aligned scale and shift of the photo: boxes map corner to corner
                box = (boxes[k].reshape(2, 2) @ m[:, :2].T + m[:, 2]).reshape(-1)
                these.append((box, points[k] @ m[:, :2].T + m[:, 2]))
        views.append(these)
    return views


def _refine(photo: np.ndarray, found: list[Detection]) -> list[Detection]:
    """The refinement pass (see the module docstring); a face no window confirms keeps its search result."""
    if not found:
        return found
    views: list[list[tuple]] = [[] for _ in found]
    for face_px in REFINE_FACE_PX:
        for mine, more in zip(views, _window_views(photo, found, face_px)):
            mine.extend(more)
    refined = []
    for det, these in zip(found, views):
        if not these:
            refined.append(det)
            continue
        # the score stays the search pass's, the one ``min_score`` was applied to
        refined.append(Detection(box=np.mean([v[0] for v in these], axis=0), score=det.score,
                                 landmarks=np.mean([v[1] for v in these], axis=0), views=len(these)))
    return refined


def landmark_geometry(det: Detection) -> dict[str, float]:
    """Shape measures of the five landmarks, in the face's own axes (x along the eyes, y down the face)."""
    e0, e1, nose, m0, m1 = np.asarray(det.landmarks, dtype=np.float64)
    eyes = e1 - e0
    spacing = max(float(np.hypot(*eyes)), 1e-9)
    across = eyes / spacing
    down = np.array([-across[1], across[0]])
    to_mouth = (m0 + m1) / 2 - (e0 + e1) / 2
    to_nose = nose - (e0 + e1) / 2
    mouth = m1 - m0
    return {
        "eye distance / box width": spacing / max(float(det.box[2] - det.box[0]), 1e-9),
        "mouth below the eyes / eye distance": float(to_mouth @ down) / spacing,
        "mouth width / eye distance": float(np.hypot(*mouth)) / spacing,
        "nose between eyes and mouth": float(to_nose @ down) / max(float(to_mouth @ down), 1e-9),
        "nose off the middle / eye distance": float(to_nose @ across) / spacing,
        "mouth line turned from the eye line (degrees)": math.degrees(math.atan2(
            float(eyes[0] * mouth[1] - eyes[1] * mouth[0]), float(eyes @ mouth))),
    }


def rejection(det: Detection, min_score: float = DEFAULT_MIN_SCORE) -> str | None:
    """Why ``det`` is not taken for a face, in words a user understands; None when it is one.

    Beyond MTCNN's score (``min_score``): the face must be at least ``MIN_FACE_WIDTH_PX`` wide (the faces64 crop
    width of its landmarks), found again in at least ``MIN_VIEWS`` of the refinement's views, and its landmarks
    within ``GEOMETRY_BOUNDS`` (see the module docstring for what each check was measured to remove)."""
    if det.score < min_score:
        return f"score {det.score:.3f} below the {min_score:g} required"
    width = face_width(det)
    if width < MIN_FACE_WIDTH_PX:
        return (f"{width:.1f} px wide, smaller than the {MIN_FACE_WIDTH_PX:g} px from which faces are told apart "
                "from other things reliably")
    if det.views < MIN_VIEWS:
        return (f"not found again when enlarged ({det.views} of {refinement_views()} views; a face is found in "
                f"at least {MIN_VIEWS})")
    for name, value in landmark_geometry(det).items():
        low, high = GEOMETRY_BOUNDS[name]
        if not low <= value <= high:
            return f"landmarks unlike a face's ({name} {value:.2f}, faces: {low:g} to {high:g})"
    return None


def face_width(det: Detection) -> float:
    """The face's width in photo pixels: its faces64 crop's side (about brow to chin), from the landmarks."""
    return crop_width_in_photo(det.landmarks, "faces64")


def refinement_views() -> int:
    """How many views the refinement pass looks at a face in (each window size, and its mirror image)."""
    return len(REFINE_FACE_PX) * (2 if _REFINE_MIRROR else 1)


def detect_faces(image, min_score: float = DEFAULT_MIN_SCORE, max_faces: int = 64, *,
                 min_face_px: float = DEFAULT_MIN_FACE_PX, refine: bool = True,
                 upsample: float | None = None, checks: bool = True,
                 rejected: list[tuple[Detection, str]] | None = None) -> list[Detection]:
    """Faces in ``image`` (a PIL image or a uint8 ``[H, W, 3]`` RGB array), largest first (by box area), at most
    ``max_faces`` of them, each with an MTCNN score of at least ``min_score``.

    ``min_face_px``: the smallest face box (photo pixels, about 0.85 of the faces64 crop's width) the search is
    tuned for; smaller ones may still be found. ``refine``: run the refinement pass (module docstring).
    ``upsample``: the search pass's enlargement, instead of ``search_upsample``'s (1, or less: search the
    photo as it is). ``checks``: keep only what ``rejection`` accepts (needs ``refine``); the others are
    appended to ``rejected`` with the reason, when a list is given.
    """
    photo = _as_uint8(image)
    if max_faces < 1:
        return []
    found = [d for d in _search(photo, float(min_face_px), upsample) if d.score >= min_score]
    found.sort(key=lambda d: -d.size)
    if refine:
        found = _refine(photo, found)
        if checks:
            accepted = []
            for det in found:
                reason = rejection(det, min_score)
                if reason is None:
                    accepted.append(det)
                elif rejected is not None:
                    rejected.append((det, reason))
            found = accepted
    found.sort(key=lambda d: -d.size)
    return found[:max_faces]
