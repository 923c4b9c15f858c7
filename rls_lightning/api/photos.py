"""``RLS.restore_photo``: one photograph through ``invert.py --photos``'s own steps, handed back in memory.

The photo goes into a private temporary folder (a file under its own name, so that its faces get the stems, and
hence the seeds, ``invert.py --photos`` gives them; anything else as ``photo.png``), then through the public entry
points of ``photos.restoration``: ``prepare_photos`` (detection, alignment, crops, which faces to invert, the
scale), the same ``InversionJob`` as the command (``save_inputs``, with the faces' ``extras``), and
``restore_photos`` (the enlargement with every face that reproduces its input pasted back). The restored photo
and each face's results are read back into memory and the folder is removed.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..image_io import open_image, to_uint8
from .folders import PhotoOptions, read_inputs
from .inputs import DEEP_PIL_MODES, InputError, is_path, pixels_from_array, pixels_from_pil, pixels_from_tensor
from .results import PhotoRestoration, RestoredFace, SuperResolution


def enlarge(photo: np.ndarray, upscale: int) -> np.ndarray:
    """``photo`` (``[H, W, 3]``, float in [0, 1] or uint8) enlarged ``upscale`` times as a restored photo's
    background is (Pillow's bicubic in float32, ``photos.paste.enlarge``): float32 in [0, 1]."""
    from ..photos.paste import enlarge as enlarge_photo

    return enlarge_photo(photo, upscale)


def _place(photo: Any, folder: Path) -> Path | None:
    """Put ``photo`` into ``folder``; returns its source path when it was a file."""
    import torch

    if is_path(photo):
        source = Path(photo)
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no such file" if not source.exists() else f"{source}: not a file")
        # a folder run skips hidden files, so a photo named ".group.png" goes in as "group.png"
        name = source.name.lstrip(".")
        shutil.copyfile(source, folder / (name if "." in name else "photo.png"))  # ".png": a name with a suffix
        return source
    try:
        if isinstance(photo, Image.Image):
            # as a file of the photo would be read (image_io): turned upright by its EXIF orientation, float and
            # other 16-bit modes scaled to 8 bits (Pillow's convert("RGB") clips them to black or white)
            photo = ImageOps.exif_transpose(photo)
            if photo.mode in ("RGB", "RGBA", "L", "LA", "P", "I;16"):  # I;16: a 16-bit PNG, read at full depth
                image = photo
            elif photo.mode in DEEP_PIL_MODES:
                image = Image.fromarray(np.rint(pixels_from_pil(photo) * 255).astype(np.uint8))
            else:
                image = photo.convert("RGB")
        elif isinstance(photo, np.ndarray):
            image = Image.fromarray(np.rint(pixels_from_array(photo) * 255).astype(np.uint8))
        elif isinstance(photo, torch.Tensor):
            image = Image.fromarray(np.rint(pixels_from_tensor(photo) * 255).astype(np.uint8))
        else:
            raise ValueError(f"a {type(photo).__name__}, not a path, PIL image, numpy array or tensor")
    except ValueError as err:
        raise InputError(f"photo: {err}") from None
    image.save(folder / "photo.png")
    return None


def restore_photo(model, photo: Any, settings, *, seed: int, num_samples: int, batch_size: int,
                  options: PhotoOptions, progress) -> PhotoRestoration:
    from ..inversion.outputs import read_record
    from ..photos.restoration import reproduces_input, restore_photos

    G = model.generator
    with tempfile.TemporaryDirectory(prefix="rls-photo-") as work:
        folder, out_dir = Path(work) / "photo", Path(work) / "out"
        folder.mkdir()
        source = _place(photo, folder)
        notes: list[str] = []

        def note(line) -> None:  # the temporary folder is no business of the caller's
            notes.append(str(line).replace(f"{folder}/", "").replace(f"{out_dir}/", ""))

        prepared = read_inputs(G, photos=folder, options=options, log=note).prepared
        if not prepared.photos:
            reason = prepared.rejected[0].reason if prepared.rejected else "not readable"
            raise InputError(f"{source or 'photo'}: {reason}")
        finished: dict[str, list] = {}
        job = model.job(out_dir, settings, batch_size=batch_size, num_samples=num_samples, seed=seed,
                        progress=progress, log=lambda line: None, save_inputs=True)
        job.extras = prepared.extras
        finish_image = job.finish_image

        def keep_samples(image, samples, rejected):  # each face's results, as the job writes them
            finished[image.stem] = samples
            return finish_image(image, samples, rejected)

        job.finish_image = keep_samples
        if prepared.faces:
            job.run(prepared.faces, prepared.rejected)
        restored = restore_photos(prepared, out_dir, log=note)
        image = None
        if restored:
            with open_image(restored[0]) as opened:
                image = opened.copy()
        path = prepared.photos[0]
        crops = {face.stem: face for face in prepared.faces}
        faces = []
        for face in prepared.plans[path].faces:
            samples = finished.get(face.stem)
            crop = crops.get(face.stem)
            result = (SuperResolution.from_samples(face.stem, face.factor, samples) if samples is not None
                      else None)
            faces.append(RestoredFace(
                index=face.index, score=face.score, box=face.box, photo_to_crop=face.photo_to_crop,
                lr_size=face.lr_size, crop=Image.fromarray(to_uint8(crop.pixels)) if crop is not None else None,
                result=result, pasted=bool(face.kept is None and reproduces_input(read_record(out_dir, face.stem))),
                kept=face.kept))
        upscale_used = prepared.plans[path].upscale
    return PhotoRestoration(image=image, upscale=upscale_used, faces=faces, notes=notes, source=source)
