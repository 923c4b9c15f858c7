"""Whole photographs through the inversion: every face found, aligned, super-resolved and put back.

``prepare_photos`` turns a folder of photos into aligned LR face crops, which go through the same
``InversionJob`` as ``--lr-dir`` inputs (stem ``<photo>_face<k>``; the job writes the crop itself as
``<photo>_face<k>_lr.png``, and its ``photo_to_crop`` matrix, score and box travel into the ``.pt`` file and the
row of ``results.csv``: ``PreparedPhotos.extras``); ``restore_photos`` then pastes every finished face back into the photo enlarged
``upscale`` times (``<photo>_restored.png``). A photo without a face still gets its ``_restored.png`` (the plain
enlargement) and a row saying so, so every input has an output.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..image_io import ImageReadError, read_image, save_png_atomic
from ..lr_images import IMAGE_SUFFIXES, LowResImage, Rejected
from .alignment import crop_transform, crop_width_in_photo
from .crop import extract_crop, lr_size_for
from .detection import detect_faces
from .paste import enlarge, paste_back

MAX_PHOTO_SIDE = 12_000  # larger photos are refused from their header (a 12k x 12k RGB float image is 1.7 GB)


@dataclasses.dataclass
class PhotoFace:
    """One detected face: where it is in its photo and how it was cropped."""

    photo: Path
    index: int
    score: float
    box: np.ndarray  # (x0, y0, x1, y1), photo pixels
    photo_to_crop: np.ndarray  # [2, 3]: photo pixel coordinates -> LR crop pixel coordinates
    lr_size: int

    @property
    def stem(self) -> str:
        return f"{self.photo.stem}_face{self.index}"

    def row(self) -> dict:
        return {"photo": self.photo.name, "face": self.index, "score": round(self.score, 5),
                "box": " ".join(f"{v:.1f}" for v in self.box), "lr_size": self.lr_size}

    def payload(self) -> dict:
        return {"photo": self.photo.name, "face": self.index, "score": self.score,
                "box": torch.tensor(self.box, dtype=torch.float64),
                "photo_to_crop": torch.tensor(self.photo_to_crop, dtype=torch.float64), "lr_size": self.lr_size}


@dataclasses.dataclass
class PreparedPhotos:
    faces: list[LowResImage]
    where: dict[str, PhotoFace]  # by face stem
    photos: list[Path]  # every readable photo, with or without a face
    rejected: list[Rejected]  # unreadable files, and photos without a face ("no face found")

    @property
    def extras(self) -> dict[str, dict]:
        """``InversionJob.extras``: what each face's row and ``.pt`` file say about where it came from."""
        return {stem: {"row": face.row(), "payload": face.payload()} for stem, face in self.where.items()}


def list_photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def prepare_photos(folder: Path, generator_resolution: int, framing: str, *, min_score: float, max_faces: int,
                   log=print) -> PreparedPhotos:
    """Detect, align and crop the faces of every photo in ``folder`` (crops quantised to 8 bits, like an LR file)."""
    prepared = PreparedPhotos([], {}, [], [])
    for path in list_photos(folder):
        try:
            photo = read_image(path, channels=3, max_side=MAX_PHOTO_SIDE)
        except ImageReadError as err:
            prepared.rejected.append(Rejected(path, err.reason))
            continue
        prepared.photos.append(path)
        pixels = photo.pixels
        detections = detect_faces((pixels * 255).round().astype(np.uint8), min_score=min_score,
                                  max_faces=max_faces)
        if not detections:
            prepared.rejected.append(Rejected(path, "no face found"))
            continue
        for k, det in enumerate(detections):
            size = lr_size_for(crop_width_in_photo(det.landmarks, framing), generator_resolution)
            photo_to_crop = crop_transform(det.landmarks, framing, size)
            crop = extract_crop(pixels, photo_to_crop, size)
            face = PhotoFace(path, k, float(det.score), np.asarray(det.box, dtype=np.float64), photo_to_crop, size)
            crop_u8 = (crop * 255).round().astype(np.uint8)
            tensor = torch.from_numpy(crop_u8).permute(2, 0, 1).float() / 127.5 - 1.0
            prepared.faces.append(LowResImage(path=path, stem=face.stem, pixels=tensor,
                                              factor=generator_resolution // size, note=photo.note))
            prepared.where[face.stem] = face
        log(f"{path}: {len(detections)} face(s), scores {', '.join(f'{d.score:.4f}' for d in detections)}")
    return prepared


def restore_photos(prepared: PreparedPhotos, out_dir: Path, upscale: int) -> list[Path]:
    """``<photo>_restored.png`` for every photo: its enlargement with each finished face pasted back."""
    written = []
    by_photo: dict[Path, list[PhotoFace]] = {}
    for face in prepared.where.values():
        by_photo.setdefault(face.photo, []).append(face)
    for path in prepared.photos:
        photo = read_image(path, channels=3, max_side=MAX_PHOTO_SIDE).pixels
        faces = []
        for face in sorted(by_photo.get(path, []), key=lambda f: f.index):
            result = out_dir / f"{face.stem}.png"
            if result.is_file():
                with Image.open(result) as image:
                    faces.append((np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0, face.photo_to_crop,
                                  face.lr_size))
        restored = paste_back(enlarge(photo, upscale), faces, upscale) if faces else enlarge(photo, upscale)
        target = out_dir / f"{path.stem}_restored.png"
        save_png_atomic((np.clip(restored, 0, 1) * 255).round().astype(np.uint8), target)
        written.append(target)
    return written
