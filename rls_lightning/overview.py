"""``overview.png``: one row per image, LR input | RLS | RLS+ | ground truth (when given), for a quick look.

The LR input is enlarged by pixel repetition (nearest neighbour), so what the method had to work from is shown
as it is, not smoothed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .image_io import save_png_atomic
from .lr_images import images_by_stem

MAX_ROWS = 16
GAP = 2  # pixels of white between tiles


def _rgb(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.NEAREST)
        return np.asarray(image, dtype=np.uint8)


def write_overview(lr_paths: list[Path], out_dir: Path, hr_dir: Path | None = None,
                   max_rows: int = MAX_ROWS) -> Path | None:
    """Compose ``out_dir/overview.png`` from the finished results (``<stem>.png``, ``<stem>_rls.png``) of up to
    ``max_rows`` of ``lr_paths`` (sorted by name); None when no image is finished yet."""
    ground_truth = images_by_stem(hr_dir) if hr_dir is not None else None
    rows = []
    for lr_path in sorted(lr_paths, key=lambda p: p.name):
        stem = lr_path.stem
        result, anchor = out_dir / f"{stem}.png", out_dir / f"{stem}_rls.png"
        if not result.is_file():
            continue
        with Image.open(result) as image:
            size = image.size[0]
        paths = [lr_path, anchor, result] + ([ground_truth.get(stem)] if ground_truth is not None else [])
        rows.append([_rgb(path, size) if path is not None and path.is_file() else np.zeros((size, size, 3), np.uint8)
                     for path in paths])
        if len(rows) == max_rows:
            break
    if not rows:
        return None
    size, columns = rows[0][0].shape[0], len(rows[0])
    grid = np.full((len(rows) * (size + GAP) - GAP, columns * (size + GAP) - GAP, 3), 255, dtype=np.uint8)
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            grid[r * (size + GAP):r * (size + GAP) + size, c * (size + GAP):c * (size + GAP) + size] = tile
    path = out_dir / "overview.png"
    save_png_atomic(grid, path)
    return path


PHOTO_ROW_HEIGHT = 256


def _fit_height(image: Image.Image, height: int) -> np.ndarray:
    width = max(1, round(image.width * height / image.height))
    return np.asarray(image.convert("RGB").resize((width, height), Image.LANCZOS), dtype=np.uint8)


def write_photo_overview(photos: list[Path], restored: list[Path], out_dir: Path, max_rows: int = MAX_ROWS, height: int = PHOTO_ROW_HEIGHT) -> Path | None:
    """``out_dir/overview.png`` for ``--photos``: one row per photo (up to ``max_rows``), the photo | the restored
    photo | each super-resolved face, all scaled to ``height`` pixels."""
    rows = []
    for photo, result in list(zip(photos, restored))[:max_rows]:
        with Image.open(photo) as original, Image.open(result) as final:
            tiles = [_fit_height(original, height), _fit_height(final, height)]
        for face in sorted(out_dir.glob(f"{photo.stem}_face[0-9]*.png")):
            if face.stem[len(photo.stem) + 5:].isdigit():  # <stem>_face<k>.png, not _rls / _lr
                with Image.open(face) as image:
                    tiles.append(_fit_height(image, height))
        rows.append(tiles)
    if not rows:
        return None
    widths = [sum(t.shape[1] for t in tiles) + GAP * (len(tiles) - 1) for tiles in rows]
    grid = np.full((len(rows) * (height + GAP) - GAP, max(widths), 3), 255, dtype=np.uint8)
    for r, tiles in enumerate(rows):
        x = 0
        for tile in tiles:
            grid[r * (height + GAP):r * (height + GAP) + height, x:x + tile.shape[1]] = tile
            x += tile.shape[1] + GAP
    path = out_dir / "overview.png"
    save_png_atomic(grid, path)
    return path
