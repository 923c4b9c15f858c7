"""What ``invert.py --photos`` does to the faces of real photographs, against the photographs themselves.

    python scripts/measure_photo_restoration.py --photos real_photos/ --work-dir /tmp/photo-restoration
    python scripts/measure_photo_restoration.py --photos real_photos/ --largest-face 16 --extra --steps 50

Each photo of ``--photos`` (real photographs with large faces; nothing is stored in the repository) is reduced
with Pillow's antialiased bicubic so that its largest face (faces64 crop width, found by ``detect_faces`` on the
original) is ``--largest-face`` px wide; photos whose largest face is narrower than ``--min-source-face`` px are
left out, so that the original still has more detail than the restored photo shows. ``invert.py --photos`` then
runs on the reduced photos with its defaults in a child process. For every face it inverted, the script pastes
that face's result (flagged or not) into the plain enlargement at the photo's restored scale, and compares the
inner part of the face square (where the paste mask is 1) with the original reduced to the same size: PSNR (dB)
and mean absolute error of the restored face and of the plain enlargement, next to the face's LR consistency
(``lr_l1_final``, ``lr_l1_plain``) from ``results.csv``. Prints a Markdown table and summary; writes
``<work-dir>/photo_restoration.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rls_lightning.atomic import atomic_write_path
from rls_lightning.photos import detection
from rls_lightning.photos.alignment import apply_affine
from rls_lightning.photos.paste import enlarge, paste_back

ROOT = Path(__file__).resolve().parents[1]


def reduce_photos(source: Path, target: Path, largest: float, min_source_face: float) -> dict[str, dict]:
    """The reduced copies in ``target``, and per photo its original path and reduction factor."""
    target.mkdir(parents=True, exist_ok=True)
    kept = {}
    for path in sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")):
        with Image.open(path) as image:
            original = image.convert("RGB")
        faces = detection.detect_faces(np.asarray(original))
        if not faces:
            continue
        widest = max(detection.face_width(d) for d in faces)
        if widest < min_source_face:
            continue
        scale = widest / largest
        size = (round(original.width / scale), round(original.height / scale))
        original.resize(size, Image.BICUBIC).save(target / f"{path.stem}.png")
        kept[path.stem] = {"original": str(path), "scale": scale, "size": size, "faces_in_original": len(faces)}
        print(f"{path.name}: {len(faces)} face(s), widest {widest:.0f} px, reduced {scale:.2f}x to {size}", flush=True)
    return kept


def inner_mask(photo_to_crop: np.ndarray, crop_size: int, upscale: int, shape: tuple[int, int]) -> np.ndarray:
    """Pixels of the enlarged photo whose centres fall in the inner part of the face square (mask 1)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    centres = np.stack([(cols + 0.5) / upscale, (rows + 0.5) / upscale], axis=-1)
    ab = apply_affine(photo_to_crop, centres) / crop_size
    return ((ab > 0.125) & (ab < 0.875)).all(axis=-1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--largest-face", type=float, default=24.0)
    parser.add_argument("--min-source-face", type=float, default=96.0)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/photo-restoration"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more invert.py options")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    reduced, out = args.work_dir / "reduced", args.work_dir / "out"
    shutil.rmtree(reduced, ignore_errors=True)
    photos = reduce_photos(args.photos, reduced, args.largest_face, args.min_source_face)
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "invert.py"), "--photos", str(reduced), "--out-dir", str(out),
                          *args.extra], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    print(run.stderr[-3000:])
    with open(out / "results.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("face")]
    faces = []
    for row in rows:
        stem = Path(row["photo"]).stem
        entry = {k: row[k] for k in ("photo", "face", "width", "factor", "status", "upscale", "lr_l1_plain",
                                     "lr_l1_final")}
        if row["status"] not in ("ok", "flagged"):
            faces.append(entry)
            continue
        upscale = int(row["upscale"])
        small = np.asarray(Image.open(reduced / f"{stem}.png").convert("RGB"), dtype=np.float32) / 255
        plain = enlarge(small, upscale)
        with Image.open(photos[stem]["original"]) as image:
            truth = np.asarray(image.convert("RGB").resize(plain.shape[1::-1], Image.BICUBIC),
                               dtype=np.float32) / 255
        face_stem = f"{stem}_face{row['face']}"
        saved = torch.load(out / f"{face_stem}.pt", weights_only=True)
        result = np.asarray(Image.open(out / f"{face_stem}.png").convert("RGB"), dtype=np.float32) / 255
        to_crop, size = saved["photo_to_crop"].numpy(), int(row["lr_size"])
        pasted = paste_back(plain, [(result, to_crop, size)], upscale)
        mask = inner_mask(to_crop, size, upscale, plain.shape[:2])
        entry.update(psnr_restored=psnr(pasted[mask], truth[mask]), psnr_plain=psnr(plain[mask], truth[mask]),
                     mae_restored=float(np.abs(pasted[mask] - truth[mask]).mean()),
                     mae_plain=float(np.abs(plain[mask] - truth[mask]).mean()))
        faces.append(entry)
    print("| photo | face | width | factor | status | lr_l1_plain | lr_l1_final | PSNR plain | PSNR restored |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in faces:
        print(f"| {f['photo']} | {f['face']} | {f['width']} | {f['factor']} | {f['status']} | {f['lr_l1_plain']} | "
              f"{f['lr_l1_final']} | {f.get('psnr_plain', float('nan')):.2f} | "
              f"{f.get('psnr_restored', float('nan')):.2f} |")
    measured = [f for f in faces if "psnr_restored" in f]
    gains = np.array([f["psnr_restored"] - f["psnr_plain"] for f in measured])
    summary = {"photos": len(photos), "faces": len(faces), "inverted": len(measured), "seconds": seconds,
               "mean_psnr_gain_db": float(gains.mean()) if len(gains) else None,
               "faces_better_than_plain": int((gains > 0).sum()),
               "lr_l1_final": sorted(float(f["lr_l1_final"]) for f in measured)}
    print(json.dumps(summary, indent=2))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(args.work_dir / "photo_restoration.json") as tmp:
        tmp.write_text(json.dumps({"photos": photos, "faces": faces, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
