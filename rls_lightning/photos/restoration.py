"""Whole photographs through the inversion: every face found, aligned, super-resolved where the generator can add
resolution, and put back.

``prepare_photos`` turns a folder of photos into aligned LR face crops, which go through the same
``InversionJob`` as ``--lr-dir`` inputs (stem ``<photo>_face<k>``; the job writes the crop itself as
``<photo>_face<k>_lr.png``, and its ``photo_to_crop`` matrix, score, box, width and the LR consistency of the
plain enlargement travel into the ``.pt`` file and the row: ``PreparedPhotos.extras``). Faces the generator
cannot improve (``planning.gain_problem``) are not inverted: they stay the plain enlargement, with a row saying
why. ``restore_photos`` then pastes every finished face that reproduces its own input back into the photo,
enlarged by the scale ``planning.choose_upscale`` allows (``<photo>_restored.png``, written a band of rows at a
time). A photo without a face still gets its ``_restored.png`` (the plain enlargement) and a row saying so, so
every input has an output. What each photo may cost is checked from its header first (``planning``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write_path, read_record_text
from ..degradations import downsample_bicubic, resize_bicubic
from ..image_io import LUMA, ImageReadError, embedded_icc_profile, open_image, read_image
from ..lr_images import IMAGE_SUFFIXES, LowResImage, Rejected
from ..names import printable
from .alignment import crop_transform, crop_width_in_photo
from .crop import extract_crop, lr_size_for
from .detection import DEFAULT_MIN_SCORE, detect_faces
from .paste import restored_bands
from .planning import DEFAULT_MEMORY_GB, DEFAULT_MIN_FACTOR, choose_upscale, gain_problem, memory_problem
from .png_stream import write_png_bands

MAX_PHOTO_SIDE = 12_000  # larger photos are refused from their header
PHOTO_SUFFIXES = IMAGE_SUFFIXES | {".gif"}  # a photo may be an (animated) GIF: its first frame is used
# A face's result is pasted only if it reproduces its own input: mean |D(x) - y| (the [0, 1] scale) at most this.
# scripts/measure_photo_restoration.py, 18 real faces of 6 real photos at x2 and x4 with the default preset:
# 0.005 to 0.020 (median 0.010); faces redrawn at x1 missed theirs by 0.02 to 0.06 (issue 22).
LR_L1_LIMIT = 0.025
RESTORED_RECORD = ".restored.json"  # the restored photos this tool wrote in a folder (never overwrite others)


@dataclasses.dataclass
class PhotoFace:
    """One detected face: where it is in its photo, how it was cropped, and whether it is restored."""

    photo: Path
    index: int
    score: float
    box: np.ndarray  # (x0, y0, x1, y1), photo pixels
    photo_to_crop: np.ndarray  # [2, 3]: photo pixel coordinates -> LR crop pixel coordinates
    lr_size: int
    width: float  # the crop's side in photo pixels (generator's framing)
    factor: int
    lr_l1_plain: float | None = None  # LR consistency of the plain (bicubic) enlargement of the crop
    kept: str | None = None  # why the plain enlargement is kept (not inverted); None when it is restored

    @property
    def stem(self) -> str:
        return f"{self.photo.stem}_face{self.index}"

    def row(self) -> dict:
        """What the face's row says about it (also the job's row: ``InversionJob.extras``, read by the page)."""
        return {"photo": self.photo.name, "face": self.index, "score": round(self.score, 5),
                "box": " ".join(f"{v:.1f}" for v in self.box), "width": round(self.width, 1),
                "lr_size": self.lr_size, "factor": self.factor,
                "lr_l1_plain": None if self.lr_l1_plain is None else round(self.lr_l1_plain, 6),
                "lr_l1_limit": LR_L1_LIMIT}

    def payload(self) -> dict:
        return {"photo": self.photo.name, "face": self.index, "score": self.score,
                "box": torch.tensor(self.box, dtype=torch.float64),
                "photo_to_crop": torch.tensor(self.photo_to_crop, dtype=torch.float64), "lr_size": self.lr_size}


@dataclasses.dataclass
class PhotoPlan:
    """What was decided for one photo before the inversion: its size, every face, the restored photo's scale."""

    path: Path
    size: tuple[int, int]  # (width, height) as decoded (EXIF orientation applied)
    upscale: int
    faces: list[PhotoFace]
    digest: str  # photo_digest of the pixels the faces were cut from


@dataclasses.dataclass
class PreparedPhotos:
    faces: list[LowResImage]  # the crops to invert
    where: dict[str, PhotoFace]  # the faces to invert, by stem
    photos: list[Path]  # every readable photo, with or without a face
    rejected: list[Rejected]  # unreadable or refused files, and photos without a face ("no face found")
    plans: dict[Path, PhotoPlan] = dataclasses.field(default_factory=dict)

    def record(self, out_dir: Path, stem: str) -> dict | None:
        """The progress row of face ``stem`` if it was made from this run's crop of it (a row of another crop,
        from before the framing, the detection threshold or the photo changed, is none); rows written before
        inputs were recorded count."""
        from ..inversion.outputs import made_from, read_record

        record = read_record(out_dir, stem)
        image = next((image for image in self.faces if image.stem == stem), None)
        if record is None or image is None:  # no row, or a face this run does not invert
            return record if record is not None and record.get("input") is None else None
        return record if made_from(out_dir, image, record) else None

    @property
    def extras(self) -> dict[str, dict]:
        """``InversionJob.extras``: what each face's row and ``.pt`` file say about where it came from."""
        return {stem: {"row": face.row(), "payload": face.payload()} for stem, face in self.where.items()}


def list_photos(folder: Path) -> list[Path]:
    """Every entry of ``folder`` that may be a photo: files of any name (one that is not an image is then refused
    with its reason, not silently left out) and folders named like an image; hidden ones are skipped."""
    return sorted(p for p in folder.iterdir()
                  if not p.name.startswith(".") and (not p.is_dir() or p.suffix.lower() in PHOTO_SUFFIXES))


def header(path: Path) -> tuple[int, int, bool] | None:
    """``(width, height, deep)`` from the file's header without decoding it (``deep``: more than 8 bits per
    sample); None when Pillow cannot tell, or for anything but a regular file (a pipe would block; then
    ``read_image`` says why)."""
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is what is checked here
            with open_image(path) as image:
                deep = image.mode.startswith(("I", "F")) or any(";16" in str(tile.args) for tile in image.tile)
                return image.size[0], image.size[1], deep
    except Exception:  # noqa: BLE001 - any unreadable file: read_image gives the one-line reason
        return None


def read_photo_uint8(path: Path) -> tuple[np.ndarray, str]:
    """The photo as uint8 ``[H, W, 3]`` (through ``read_image``, the one decoder), and its conversion notes. An
    8-bit file is decoded straight to uint8, EXIF orientation included, never as float32 (12 bytes a pixel,
    1.3 GB for a 12000x9000 photo): the same values as ``rint(read_image(path).pixels * 255)``."""
    decoded = read_image(path, channels=3, max_side=MAX_PHOTO_SIDE, dtype=np.uint8)
    return decoded.pixels, decoded.note


def photo_digest(photo: np.ndarray) -> str:
    """SHA-256 of a decoded uint8 photo (its shape and values): whether the file read again is the one its faces
    were cut from, whatever its size."""
    digest = hashlib.sha256(str(photo.shape).encode())
    digest.update(np.ascontiguousarray(photo).data)
    return digest.hexdigest()


def plain_consistency(crop: torch.Tensor, generator_resolution: int, factor: int) -> float:
    """Mean |D(x) - y| (the [0, 1] scale) of the plain enlargement: the crop ``y`` (``[3, n, n]`` in [-1, 1])
    enlarged bicubically to the generator's size, then degraded as the inversion's results are (paper Eq. 3)."""
    plain = resize_bicubic(crop[None].double(), generator_resolution).clamp(-1, 1)
    return float(0.5 * (downsample_bicubic(plain, factor) - crop[None].double()).abs().mean())


def prepare_photos(folder: Path, generator_resolution: int, framing: str, *, min_score: float = DEFAULT_MIN_SCORE,
                   max_faces: int = 16, upscale: int = 4, min_factor: int = DEFAULT_MIN_FACTOR,
                   memory_gb: float = DEFAULT_MEMORY_GB, log=print) -> PreparedPhotos:
    """Detect, align and crop the faces of every photo in ``folder`` (crops quantised to 8 bits, like an LR file),
    decide which ones to invert and each photo's restored scale; one line per photo in ``log``."""
    prepared = PreparedPhotos([], {}, [], [])
    seen: dict[str, Path] = {}
    for path in list_photos(folder):
        if path.stem in seen:  # a.png and a.jpg would write the same outputs
            prepared.rejected.append(Rejected(path, f"same name stem as {seen[path.stem].name}"))
            continue
        size = header(path)
        problem = (memory_problem(size[0], size[1], memory_gb * 1e9, size[2])
                   if size and max(size[:2]) <= MAX_PHOTO_SIDE else None)
        if problem is not None:
            prepared.rejected.append(Rejected(path, problem))
            continue
        try:
            photo, note = read_photo_uint8(path)
        except ImageReadError as err:
            prepared.rejected.append(Rejected(path, err.reason))
            continue
        seen[path.stem] = path
        prepared.photos.append(path)
        if note:
            log(f"{path}: {note}")  # once per photo, not once per face
        not_faces: list = []
        digest = photo_digest(photo)
        detections = detect_faces(photo, min_score=min_score, max_faces=max_faces, rejected=not_faces)
        height, width = photo.shape[:2]
        faces = []
        for k, det in enumerate(detections):
            side = crop_width_in_photo(det.landmarks, framing)
            lr_size = lr_size_for(side, generator_resolution)
            photo_to_crop = crop_transform(det.landmarks, framing, lr_size)
            face = PhotoFace(path, k, float(det.score), np.asarray(det.box, dtype=np.float64), photo_to_crop, lr_size,
                             side, generator_resolution // lr_size)
            face.kept = gain_problem(side, lr_size, generator_resolution, min_factor)
            faces.append(face)
            if face.kept is not None:
                continue
            crop_u8 = (extract_crop(photo, photo_to_crop, lr_size) * 255).round().astype(np.uint8)
            tensor = torch.from_numpy(crop_u8).permute(2, 0, 1).float() / 127.5 - 1.0
            face.lr_l1_plain = plain_consistency(tensor, generator_resolution, face.factor)
            source = f"{digest} {framing} {min_score!r} {max_faces} face {k} at {lr_size}"
            prepared.faces.append(LowResImage(path=path, stem=face.stem, pixels=tensor, factor=face.factor,
                                              source=source))
            prepared.where[face.stem] = face
        del photo
        restored = [f.width for f in faces if f.kept is None]
        scale = choose_upscale(width, height, upscale, generator_resolution, restored)
        prepared.plans[path] = PhotoPlan(path, (width, height), scale.upscale, faces, digest)
        if not faces:
            prepared.rejected.append(Rejected(path, "no face found"))
        log(_photo_line(path, faces, not_faces, scale.upscale, upscale, scale.reason))
    return prepared


def _photo_line(path: Path, faces: list[PhotoFace], not_faces: list, upscale: int, requested: int,
                reason: str | None) -> str:
    restored = sum(face.kept is None for face in faces)
    line = f"{path}: {len(faces)} face(s), {restored} to restore"
    if len(faces) > restored:
        line += f", {len(faces) - restored} left as they are (too large for this generator to add detail; see results.csv)"
    if not_faces:
        line += (f"; {len(not_faces)} detection(s) not taken for faces ("
                 + "; ".join(f"{det.size:.0f} px at ({(det.box[0] + det.box[2]) / 2:.0f}, "
                             f"{(det.box[1] + det.box[3]) / 2:.0f}): {why}" for det, why in not_faces[:3])
                 + (", ..." if len(not_faces) > 3 else "") + ")")
    if upscale != requested:
        line += f"; restored at x{upscale}, not x{requested}: {reason}"
    return line


def reproduces_input(record: dict | None) -> bool | None:
    """Whether a finished face's result reproduces its LR input (``LR_L1_LIMIT``); None when it has no result."""
    if not record or record.get("status") != "ok":
        return None
    try:
        return float(record["lr_l1_final"]) <= LR_L1_LIMIT
    except (KeyError, TypeError, ValueError):
        return None


def is_gray(photo: np.ndarray) -> bool:
    """Whether every pixel of a uint8 ``[H, W, 3]`` photo has three equal channels (a black-and-white photo, as
    decoded from L, LA or 16-bit grayscale, or an RGB file of one), compared a band of rows at a time."""
    rows = max(1, (1 << 22) // max(1, photo.shape[1] * 3))
    return all(np.array_equal(band[..., 0], band[..., 1]) and np.array_equal(band[..., 0], band[..., 2])
               for band in (photo[top:top + rows] for top in range(0, photo.shape[0], rows)))


def _finished_faces(prepared: PreparedPhotos, plan: PhotoPlan, out_dir: Path, gray: bool) -> list:
    """``restored_bands``'s faces of one photo: each finished result that reproduces its input and was made from
    this run's crop of that face (``PreparedPhotos.record``). Gray photos get gray faces (Rec. 601 luma,
    ``LUMA``): the generator draws colour, which a black-and-white photo never had."""
    faces = []
    for face in plan.faces:
        result = out_dir / f"{face.stem}.png"
        if face.kept is None and reproduces_input(prepared.record(out_dir, face.stem)) and result.is_file():
            with open_image(result) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
            if gray:
                pixels = np.repeat((pixels @ LUMA.astype(np.float32))[..., None], 3, axis=2)
            faces.append((pixels, face.photo_to_crop, face.lr_size))
    return faces


def restore_photos(prepared: PreparedPhotos, out_dir: Path, log=print) -> list[Path]:
    """``<photo>_restored.png`` for every photo: its enlargement (at the scale its plan chose) with each finished
    face that reproduces its input pasted back, the photo's RGB colour profile kept (a gray photo's gray profile
    too, in a grayscale PNG). A file of that name this tool did not write is never replaced, and a photo that is
    no longer the picture planned (changed or removed during the run) is skipped: either with a line in ``log``,
    the other photos still written."""
    record_path = out_dir / RESTORED_RECORD
    try:
        ours = set(json.loads(read_record_text(record_path)))
    except (OSError, ValueError, TypeError):
        ours = set()
    written = []
    for path in prepared.photos:
        plan = prepared.plans[path]
        target = out_dir / f"{path.stem}_restored.png"
        if target.exists() and target.name not in ours:
            log(f"{target}: exists and was not written by this tool; not replaced (move it or choose another "
                "--out-dir)")
            continue
        try:
            photo, _ = read_photo_uint8(path)
            height, width = photo.shape[:2]
            if photo_digest(photo) != plan.digest:
                raise ImageReadError(path, "is not the picture its faces were cut from (changed during the run); "
                                           "rerun")
            gray = is_gray(photo)
            faces = _finished_faces(prepared, plan, out_dir, gray)
            profile, space = embedded_icc_profile(path) or (None, None)
        except (ImageReadError, OSError) as err:
            log(f"{printable(path)}: restored photo not written ({err})")
            continue
        gray_png = gray and space == "GRAY"  # a gray profile describes gray values: a grayscale PNG carries it
        if profile is not None and space != ("GRAY" if gray_png else "RGB"):
            log(f"{printable(path)}: its {space} colour profile is not carried into {target.name} (its values were "
                "converted to RGB without it)")
            profile = None
        ours.add(target.name)
        with atomic_write_path(record_path) as tmp:  # recorded first: a file cut off by a crash is still ours
            tmp.write_text(json.dumps(sorted(ours)))
        write_png_bands(target, width * plan.upscale, height * plan.upscale,
                        restored_bands(photo, faces, plan.upscale), icc_profile=profile, gray=gray_png)
        written.append(target)
    return written
