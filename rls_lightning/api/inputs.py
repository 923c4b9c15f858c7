"""Images given to the API, whatever their form, as the LR targets ``invert.py`` would read from files.

Accepted: a path (read by ``lr_images.load_low_res``, the decoder of ``invert.py --lr-dir``, so a file gives the
same target either way), a PIL image, a numpy array ``[h, w, 3]`` or ``[h, w]`` (uint8 0-255, uint16 0-65535, or
float in [0, 1]) and a torch tensor ``[3, h, w]`` or ``[N, 3, h, w]`` (float in [0, 1], or uint8). 8-bit inputs are
divided by 255 in float32 exactly as the file decoder does; float inputs are used as they are (not rounded to 8
bits). Every input is checked before any work: one that cannot be used is an ``InputError`` naming it (its path,
or its position in the list) and the problem.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from PIL import Image, ImageOps

from ..image_io import LUMA
from ..lr_images import LowResImage, Rejected, load_low_res, size_problem


class InputError(ValueError):
    """An input image that cannot be super-resolved; one line naming it and the problem."""


def is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


def as_list(images: Any) -> list:
    """One image or a sequence of them as a list; a ``[N, 3, h, w]`` tensor (or array) is N images."""
    if is_path(images) or isinstance(images, Image.Image):
        return [images]
    if isinstance(images, torch.Tensor):
        return list(images) if images.dim() == 4 else [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, Iterable):
        return list(images)
    raise InputError(f"images: a path, PIL image, numpy array or tensor (or a list of them) was expected, "
                     f"not {type(images).__name__}")


DEEP_PIL_MODES = ("F", "I", "I;16", "I;16B", "I;16L")  # PIL modes of more than 8 bits per sample


def pixels_from_pil(image: Image.Image) -> np.ndarray:
    """``[h, w, 3]`` float32 in [0, 1] by Pillow's own conversions, as ``image_io`` decodes an 8-bit file (the
    caller turns it upright by its EXIF orientation first, as a file is read)."""
    if image.mode in DEEP_PIL_MODES:
        scale = 1.0 if image.mode == "F" else (65535.0 if image.mode.startswith("I;16") else None)
        if scale is None:
            raise ValueError("32-bit integer pixels have no known white level")
        return pixels_from_array(np.asarray(image, dtype=np.float64) / scale)
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    array /= 255.0
    return array


def pixels_from_array(array: np.ndarray) -> np.ndarray:
    """``[h, w, 3]`` float32 in [0, 1] from an array ``[h, w]``, ``[h, w, 1|3|4]`` (alpha dropped)."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"shape {tuple(array.shape)}: expected [h, w], [h, w, 3] or [h, w, 4]")
    array = array[:, :, :3]
    if array.dtype == np.uint8:
        pixels = array.astype(np.float32)
        pixels /= 255.0
    elif array.dtype == np.uint16:
        pixels = (array.astype(np.float64) / 65535.0).astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        pixels = array.astype(np.float32)
        if not np.isfinite(pixels).all():
            raise ValueError("non-finite (NaN or infinite) values")
        if pixels.size and (pixels.min() < 0 or pixels.max() > 1):
            raise ValueError(f"float values outside [0, 1] (from {pixels.min():.4g} to {pixels.max():.4g})")
    else:
        raise ValueError(f"dtype {array.dtype}: expected uint8, uint16 or float in [0, 1]")
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def pixels_from_tensor(tensor: torch.Tensor) -> np.ndarray:
    """``[3, h, w]`` (or ``[1, h, w]``, ``[h, w]``) in [0, 1] (or uint8) as ``[h, w, 3]`` float32."""
    tensor = tensor.detach().cpu()
    if tensor.dim() == 3:
        if tensor.shape[0] not in (1, 3, 4):
            raise ValueError(f"shape {tuple(tensor.shape)}: expected [3, h, w] (channels first)")
        tensor = tensor.permute(1, 2, 0)
    elif tensor.dim() != 2:
        raise ValueError(f"shape {tuple(tensor.shape)}: expected [3, h, w] or [N, 3, h, w]")
    if tensor.dtype == torch.uint8:
        return pixels_from_array(tensor.numpy())
    if not tensor.is_floating_point():
        raise ValueError(f"dtype {tensor.dtype}: expected float in [0, 1] or uint8")
    return pixels_from_array(tensor.float().numpy())


def _default_name(index: int, count: int) -> str:
    return f"image{index:0{max(1, math.ceil(math.log10(count + 1)))}d}"


def _gray(item: Any, pixels: np.ndarray) -> np.ndarray:
    """``[h, w, 1]`` for a one-channel generator: Pillow's own ``convert("L")`` for an 8-bit PIL image (as a file
    is read), a gray input as it is, the same weights in float for anything else."""
    if isinstance(item, Image.Image) and item.mode not in DEEP_PIL_MODES:
        return np.asarray(item.convert("L"), dtype=np.float32)[:, :, None] / np.float32(255.0)
    if np.array_equal(pixels[:, :, 0], pixels[:, :, 1]) and np.array_equal(pixels[:, :, 1], pixels[:, :, 2]):
        return pixels[:, :, :1]
    return (pixels @ LUMA.astype(np.float32))[:, :, None]


def to_low_res(images: Any, resolution: int, names: list[str] | None = None, channels: int = 3
               ) -> list[LowResImage]:
    """The inputs as ``LowResImage`` s for a generator of ``resolution`` px and ``channels`` (3, or 1: inputs
    turned to gray as the folder run reads them); factor inferred from each size.

    Names (the file stem for a path, else ``image0``, ``image1``, ... or ``names``) seed the initialisations of
    samples after the first, as ``invert.py`` seeds them from file stems; raises ``InputError``.
    """
    items = as_list(images)
    if not items:
        raise InputError("images: the list is empty")
    if names is not None and len(names) != len(items):
        raise InputError(f"names: {len(names)} name(s) for {len(items)} image(s)")
    out = []
    for index, item in enumerate(items):
        if is_path(item):
            path = Path(item)
            loaded = load_low_res(path, resolution, channels)
            if isinstance(loaded, Rejected):
                raise InputError(f"{path}: {loaded.reason}")
            if names is not None:
                loaded.stem = names[index]
            out.append(loaded)
            continue
        name = names[index] if names is not None else _default_name(index, len(items))
        try:
            if isinstance(item, Image.Image):
                item = ImageOps.exif_transpose(item)  # upright, as a file of it is read
                pixels = pixels_from_pil(item)
            elif isinstance(item, np.ndarray):
                pixels = pixels_from_array(item)
            elif isinstance(item, torch.Tensor):
                pixels = pixels_from_tensor(item)
            else:
                raise ValueError(f"a {type(item).__name__}, not a path, PIL image, numpy array or tensor")
        except ValueError as err:
            raise InputError(f"images[{index}]: {err}") from None
        if channels == 1:
            pixels = _gray(item, pixels)
        height, width = pixels.shape[:2]
        problem = size_problem(width, height, resolution)
        if problem is not None:
            raise InputError(f"images[{index}]: {problem}")
        tensor = torch.from_numpy(pixels).permute(2, 0, 1) * 2.0 - 1.0
        out.append(LowResImage(path=Path(name), stem=name, pixels=tensor, factor=resolution // width))
    return out
