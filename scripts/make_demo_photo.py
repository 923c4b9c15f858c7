"""Make the demo photograph for ``invert.py --photos``: four of the demo faces (``data/demo/hr``, drawn by the demo
generator, so no real person is shown) placed into a synthetic background by known similarities, small and
turned as in a group picture, one of them cut by the border.

    python scripts/make_demo_photo.py            # -> data/demo/photos/group.png
    python invert.py --photos data/demo/photos  # -> data/demo/photos_rls+/
    python scripts/make_demo_photo.py --figure data/demo/photos_rls+   # the README's picture

The figure shows the photo enlarged 4x by plain bicubic interpolation beside the restored photo, cut to the part
with the faces.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from rls_lightning.paths import PROJECT_ROOT
from rls_lightning.image_io import save_png_atomic
from rls_lightning.photos.synthetic import Placement, background, compose, similarity

# demo face, crop width in the photo (px), angle (degrees, counter-clockwise), centre (x, y)
LAYOUT = [(1, 22, 12.0, (40.0, 40.0)), (2, 17, -20.0, (100.0, 52.0)), (4, 13, 25.0, (160.0, 34.0)),
          (6, 19, -8.0, (7.0, 100.0))]
SIZE = (190, 124)  # width, height


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "data" / "demo" / "photos" / "group.png")
    parser.add_argument("--figure", type=Path, default=None,
                        help="instead: compose the README figure from this invert.py --photos output folder")
    args = parser.parse_args()
    if args.figure is not None:
        return write_figure(args.out, args.figure)
    hr = PROJECT_ROOT / "data" / "demo" / "hr"
    faces = [np.asarray(Image.open(hr / f"demo{i:02d}.png").convert("RGB")) for i, *_ in LAYOUT]
    placements = [Placement(similarity(width, 64, angle, centre), 64) for _, width, angle, centre in LAYOUT]
    backdrop = background(SIZE[1], SIZE[0], np.random.default_rng(2026), "smooth")
    save_png_atomic(compose(backdrop, faces, placements, supersample=4), args.out)
    print(f"wrote {args.out}")
    return 0


def write_figure(photo_path: Path, result_dir: Path, upscale: int = 4, gap: int = 4) -> int:
    """Plain bicubic enlargement | restored photo, side by side, cut to the faces' rows."""
    from rls_lightning.photos.paste import enlarge

    photo = np.asarray(Image.open(photo_path).convert("RGB"), dtype=np.float32) / 255
    plain = (enlarge(photo, upscale) * 255).round().astype(np.uint8)
    restored = np.asarray(Image.open(result_dir / f"{photo_path.stem}_restored.png").convert("RGB"))
    rows = slice(0, round(0.95 * plain.shape[0]))
    left, right = plain[rows], restored[rows]
    figure = np.full((left.shape[0], left.shape[1] * 2 + gap, 3), 255, dtype=np.uint8)
    figure[:, :left.shape[1]], figure[:, left.shape[1] + gap:] = left, right
    target = PROJECT_ROOT / "checkpoints" / "demo64" / "demo_photo_4x.png"
    save_png_atomic(figure, target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
