"""Image files <-> tensors in the generator's [-1, 1] range; writes are atomic (temporary file, then rename)."""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from .atomic import atomic_write_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, C, H, W]`` or ``[C, H, W]`` in [-1, 1] -> ``uint8`` ``[..., H, W, C]`` (rounded, clipped)."""
    array = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return array.movedim(-3, -1).numpy()


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """Tile ``[N, C, H, W]`` images into one ``uint8`` array, ``columns`` per row, missing cells black."""
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w, c), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, columns)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = tile
    return grid


def load_rgb(path: str | os.PathLike) -> torch.Tensor:
    """An image file as ``[3, H, W]`` float in [0, 1] (any mode converted to RGB)."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)


def save_png_atomic(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write a ``uint8`` ``[H, W, C]`` array as PNG so that ``path`` is either absent or complete."""
    with atomic_write_path(path) as tmp:
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(tmp, format="PNG")
