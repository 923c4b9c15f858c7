"""``overview.png``: one row per image, LR input | RLS | RLS+ | ground truth (when given), for a quick look.

Each column is captioned above its first tile, and tiles smaller than ``MIN_TILE`` px are enlarged by a whole factor
(pixel repetition), so a 64 px result shows at 128 px with every pixel of it exact. The LR input is enlarged by
pixel repetition too, so what the method had to work from is shown as it is, not smoothed. The ground truth
(``--hr-dir``) is only shown, never used by the method, so an HR file that cannot be shown costs one line
(``usable_ground_truth``, run before the optimisation) and a black tile, never the run's results.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .image_io import ImageReadError, open_image, read_image, save_png_atomic
from .lr_images import AMBIGUOUS, listed, match_stems

MAX_ROWS = 16
GAP = 2  # pixels of white between tiles
MIN_TILE = 128  # smaller results are shown enlarged by a whole factor, so 64 px faces are readable at a glance
CAPTION_HEIGHT = 24  # the band above the tiles naming each column
# The ground truth of the largest generators (1024 px, paper section 4, "Experimental setup") at up to 4x; a
# larger HR file is refused from its header (decoded as float RGB, 4096 px is 200 MB)
HR_MAX_SIDE = 4096


@dataclasses.dataclass
class UnusableGroundTruth:
    """The ``--hr-dir`` file(s) of one stem that the overview cannot show, and why."""

    paths: list[Path]
    reason: str

    def __str__(self) -> str:
        """The log line: full paths."""
        return f"{listed(self.paths)}: {self.reason}; not shown in overview.png"

    @property
    def note(self) -> str:
        """For the image's row of results.csv: file names only (the web page shows the notes)."""
        return f"ground truth {listed([p.name for p in self.paths])} not shown: {self.reason}"


def usable_ground_truth(hr_dir: Path, stems: Iterable[str]) -> tuple[dict[str, Path], dict[str, UnusableGroundTruth]]:
    """The HR file of each of ``stems`` that can be shown, and the unusable ones by stem: unreadable, not an image,
    a decompression bomb or larger than ``HR_MAX_SIDE`` (from the header), or one stem of several files.

    Every file is decoded once here, before the optimisation, so that a bad one is said at the start of a run
    instead of failing its end; a stem without an HR file is in neither result."""
    files, ambiguous = match_stems(hr_dir)
    usable, unusable = {}, {}
    for stem in sorted(set(stems)):
        if stem in ambiguous:
            unusable[stem] = UnusableGroundTruth(ambiguous[stem], AMBIGUOUS)
        elif stem in files:
            try:
                read_image(files[stem], channels=3, max_side=HR_MAX_SIDE)
            except ImageReadError as err:
                unusable[stem] = UnusableGroundTruth([files[stem]], err.reason)
            else:
                usable[stem] = files[stem]
    return usable, unusable


def _tile(path: Path | None, size: int) -> np.ndarray:
    """``path`` as a ``size`` x ``size`` RGB tile (nearest neighbour); black when absent or unreadable."""
    black = np.zeros((size, size, 3), np.uint8)
    if path is None:
        return black
    try:
        pixels = read_image(path, channels=3, max_side=HR_MAX_SIDE).pixels
    except ImageReadError:  # changed since usable_ground_truth, or one of ours removed meanwhile
        return black
    image = Image.fromarray(np.round(pixels * 255).astype(np.uint8))
    if image.size != (size, size):
        image = image.resize((size, size), Image.NEAREST)
    return np.asarray(image, dtype=np.uint8)


def zoom_for(size: int) -> int:
    """The whole factor a ``size`` px tile is enlarged by: the smallest that reaches ``MIN_TILE`` px (1 from
    there up)."""
    return max(1, -(-MIN_TILE // size))


def _captioned(grid: np.ndarray, captions: list[str], tile: int) -> np.ndarray:
    """``grid`` under a white band with one caption centred over each column of ``tile`` px tiles."""
    band = Image.new("RGB", (grid.shape[1], CAPTION_HEIGHT), "white")
    draw = ImageDraw.Draw(band)
    font = ImageFont.load_default(size=14)
    for column, caption in enumerate(captions):
        left, _, right, _ = draw.textbbox((0, 0), caption, font=font)
        x = column * (tile + GAP) + max(0, (tile - (right - left)) // 2)
        draw.text((x, 4), caption, fill="black", font=font)
    return np.concatenate([np.asarray(band, dtype=np.uint8), grid])


def write_overview(lr_paths: list[Path], out_dir: Path, ground_truth: dict[str, Path] | None = None,
                   max_rows: int = MAX_ROWS, stages: tuple[str, str] = ("RLS", "RLS+")) -> Path | None:
    """Compose ``out_dir/overview.png`` from the finished results (``<stem>.png``, ``<stem>_rls.png``) of up to
    ``max_rows`` of ``lr_paths`` (sorted by name), with a ground-truth column when ``ground_truth`` (``{stem:
    HR file}``, see ``usable_ground_truth``) is given; None when no image is finished yet. Captions above the
    columns (the LR column names its size; ``stages`` name the anchor and the result), tiles enlarged by
    ``zoom_for``."""
    rows, lr_sizes = [], set()
    for lr_path in sorted(lr_paths, key=lambda p: p.name):
        stem = lr_path.stem
        result, anchor = out_dir / f"{stem}.png", out_dir / f"{stem}_rls.png"
        if not result.is_file():
            continue
        with open_image(result) as image:
            size = image.size[0]
        try:
            with open_image(lr_path) as image:
                lr_sizes.add(image.size[0])
        except (OSError, ValueError):
            pass
        paths = [lr_path, anchor, result] + ([ground_truth.get(stem)] if ground_truth is not None else [])
        shown = size * zoom_for(size)
        rows.append([_tile(path, shown) for path in paths])
        if len(rows) == max_rows:
            break
    if not rows:
        return None
    size, columns = rows[0][0].shape[0], len(rows[0])
    grid = np.full((len(rows) * (size + GAP) - GAP, columns * (size + GAP) - GAP, 3), 255, dtype=np.uint8)
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            grid[r * (size + GAP):r * (size + GAP) + size, c * (size + GAP):c * (size + GAP) + size] = tile
    lr_caption = f"LR ({lr_sizes.pop()} px)" if len(lr_sizes) == 1 else "LR"
    captions = [lr_caption, *stages] + (["HR (truth)"] if ground_truth is not None else [])
    path = out_dir / "overview.png"
    save_png_atomic(_captioned(grid, captions, size), path)
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
        with open_image(photo) as original, open_image(result) as final:
            tiles = [_fit_height(original, height), _fit_height(final, height)]
        for face in sorted(out_dir.glob(f"{photo.stem}_face[0-9]*.png")):
            if face.stem[len(photo.stem) + 5:].isdigit():  # <stem>_face<k>.png, not _rls / _lr
                with open_image(face) as image:
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
