"""Training images for the StyleGAN2 trainer: a folder or a zip of same-size square images, decoded once into
memory as uint8, with a seeded, held-out validation split that training never sees."""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..image_io import allowed_readers
from rich.progress import track

from ..fingerprint import first_line
from ..lr_images import IMAGE_SUFFIXES

MAX_IMAGE_BYTES = 64 << 20  # one encoded training image (an uncompressed 4096 px RGB TIFF is 48 MB)


def list_images(source: Path) -> list[str]:
    """Sorted image names in a folder or a zip."""
    if source.is_dir():
        return sorted(p.name for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    with zipfile.ZipFile(source) as archive:
        return sorted(n for n in archive.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)


def split_names(names: list[str], holdout: int, seed: int) -> tuple[list[str], list[str]]:
    """(training, held-out) names: a seeded permutation, the last ``holdout`` names held out."""
    order = np.random.default_rng(seed).permutation(len(names))
    held = sorted(names[i] for i in order[len(names) - holdout:]) if holdout else []
    held_set = set(held)
    return [n for n in names if n not in held_set], held


def _bounded_bytes(source: Path, archive: zipfile.ZipFile | None, name: str) -> bytes:
    """The bytes of one training image, refused (``OSError``) above ``MAX_IMAGE_BYTES`` before they are read: a
    zip member's size as its header declares it (a member of many GB packs into a few MB), a file's by ``stat``
    (which must be a regular file: a link to ``/dev/zero`` would be read forever). At most that many bytes are
    read either way."""
    if archive is not None:
        size = archive.getinfo(name).file_size
        opened = archive.open(name)
    else:  # checked on the open file (a FIFO swapped in after a stat would block the open); links are followed
        fd = os.open(source / name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            os.close(fd)
            raise OSError("not a regular file")
        size, opened = status.st_size, os.fdopen(fd, "rb")
    if size > MAX_IMAGE_BYTES:
        opened.close()
        raise OSError(f"{size} bytes, more than the {MAX_IMAGE_BYTES} a training image may take")
    with opened:
        data = opened.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise OSError(f"more than the {MAX_IMAGE_BYTES} bytes a training image may take")
    return data


def load_images(source: Path, names: list[str], resolution: int, channels: int = 3,
                progress: bool = True) -> torch.Tensor:
    """``[N, C, R, R]`` uint8. Images of another size are resized with Lanczos; an unreadable file is an error."""
    mode = "RGB" if channels == 3 else "L"
    out = np.empty((len(names), resolution, resolution, channels), dtype=np.uint8)
    archive = zipfile.ZipFile(source) if source.is_file() else None
    try:
        iterator = track(names, description="decoding images") if progress else names
        for i, name in enumerate(iterator):
            try:
                data = _bounded_bytes(source, archive, name)
                # a training set is data from elsewhere: only the allowed readers (no Ghostscript for EPS)
                with Image.open(io.BytesIO(data), formats=allowed_readers()) as image:
                    image = image.convert(mode)
                    if image.size != (resolution, resolution):
                        image = image.resize((resolution, resolution), Image.LANCZOS)
                    array = np.asarray(image, dtype=np.uint8)
            except (OSError, zipfile.BadZipFile, Image.DecompressionBombError) as err:  # a corrupt member too
                raise ValueError(f"{source}/{name}: unreadable image ({first_line(err)})") from None
            out[i] = array[:, :, None] if array.ndim == 2 else array
    finally:
        if archive is not None:
            archive.close()
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
