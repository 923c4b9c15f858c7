"""What alignment from a photo costs the inversion: real held-out faces, once given as perfectly aligned LR crops
and once found in a photo, each through the same RLS / RLS+ run of the demo model.

    python scripts/measure_photo_inversion.py --data ../shared/data/faces64/faces64.zip --faces 48 --width 16

Takes the first ``--faces`` faces the demo training held out (seeded split, as ``scripts/evaluate_demo_model.py``;
read from the zip in memory, results only under the git-ignored ``runs/``). Condition *aligned*: the LR input is
D(face), the PIL-exact bicubic downscaling of the true 64 px face to the LR size of ``--width``. Condition
*photo*: the face is placed into a 96 px background by a random similarity (``--width`` photo pixels wide, turned
within +-30 degrees) and found, aligned and cut by ``invert.py --photos``'s own steps (``photos.restoration``).
Both go through RLS then RLS+ with the preset's settings. PSNR is measured against the true face in its own frame:
the photo condition's result is resampled from the detected crop's frame into the true face's frame (the
composition of the known placement and the recovered ``photo_to_crop``), and a 4-pixel border is left out of both
conditions. LR consistency is the job's own (mean |D(x) - y| on the [0, 1] scale, against each condition's input).
Prints JSON and a Markdown table; writes them to ``runs/photo_inversion/``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_photo_alignment import held_out_faces, match  # noqa: E402

from rls_lightning.runtime import resolve_precision  # noqa: E402
from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR, PROJECT_ROOT  # noqa: E402
from rls_lightning.degradations import downsample_bicubic  # noqa: E402
from rls_lightning.flow.checkpoint import load_flow  # noqa: E402
from rls_lightning.inversion.job import InversionJob, TrainerOptions  # noqa: E402
from rls_lightning.inversion.outputs import read_record  # noqa: E402
from rls_lightning.inversion.presets import get_preset  # noqa: E402
from rls_lightning.lr_images import LowResImage  # noqa: E402
from rls_lightning.photos.alignment import crop_transform, crop_width_in_photo  # noqa: E402
from rls_lightning.photos.crop import extract_crop, lr_size_for, warp_affine  # noqa: E402
from rls_lightning.photos.detection import DEFAULT_MIN_SCORE, detect_faces  # noqa: E402
from rls_lightning.photos.synthetic import Placement, background, compose, similarity  # noqa: E402
from rls_lightning.stylegan import load_generator  # noqa: E402

BORDER = 4


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[BORDER:-BORDER, BORDER:-BORDER], b[BORDER:-BORDER, BORDER:-BORDER]
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def as_input(pixels01: np.ndarray, stem: str, factor: int) -> LowResImage:
    u8 = (np.clip(pixels01, 0, 1) * 255).round().astype(np.uint8)  # as an 8-bit file would hold it
    return LowResImage(path=Path(f"{stem}.png"), stem=stem, pixels=torch.from_numpy(u8).permute(2, 0, 1) / 127.5 - 1,
                       factor=factor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--faces", type=int, default=48)
    parser.add_argument("--width", type=float, default=16.0, help="faces64 crop width in the photo (px)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / "runs" / "photo_inversion")
    args = parser.parse_args(argv)
    from rls_lightning.runtime import silence_known_lightning_warnings

    silence_known_lightning_warnings()
    G = load_generator(DEMO_GENERATOR)
    flow = load_flow(DEMO_FLOW, G)
    res = G.img_resolution
    size = lr_size_for(args.width, res)
    rng = np.random.default_rng(args.seed)
    faces = [f.astype(np.float32) / 255 for f in held_out_faces(args.data, args.faces, 1000, 0)]
    aligned, photo, frames, found = [], [], {}, 0
    for i, face in enumerate(faces):
        stem = f"face{i:04d}"
        lr = downsample_bicubic(torch.from_numpy(face).permute(2, 0, 1)[None] * 2 - 1, res // size)[0]
        aligned.append(as_input(((lr.permute(1, 2, 0).numpy() + 1) / 2), stem, res // size))
        placement = Placement(similarity(args.width, res, float(rng.uniform(-30, 30)),
                                         tuple(rng.uniform(40, 56, size=2))), res)
        picture = compose(background(96, 96, rng, "smooth"), [(face * 255).round().astype(np.uint8)], [placement])
        det = match(placement, detect_faces(picture, min_score=DEFAULT_MIN_SCORE))
        if det is None:
            continue
        found += 1
        n = lr_size_for(crop_width_in_photo(det.landmarks, G.config.framing), res)
        photo_to_crop = crop_transform(det.landmarks, G.config.framing, n)
        photo.append(as_input(extract_crop(picture.astype(np.float32) / 255, photo_to_crop, n), stem, res // n))
        frames[stem] = (placement, photo_to_crop, n)
    settings = get_preset("rls+")
    trainer = TrainerOptions(precision=resolve_precision("auto", "cpu"))
    rows = {}
    for name, images in (("aligned", aligned), ("photo", photo)):
        job = InversionJob(G, flow, settings, args.work_dir / name, batch_size=args.batch_size, trainer=trainer,
                           log=lambda message: None)
        job.run(images)  # resumes: images finished by an earlier run of this script are kept
        rows[name] = {image.stem: read_record(args.work_dir / name, image.stem) or {} for image in images}
    from PIL import Image

    scores = {name: {"psnr": [], "lr_l1": []} for name in rows}
    for i, face in enumerate(faces):
        stem = f"face{i:04d}"
        for name in rows:
            if rows[name].get(stem, {}).get("status") != "ok":
                continue
            result = np.asarray(Image.open(args.work_dir / name / f"{stem}.png"), dtype=np.float64) / 255
            if name == "photo":  # into the true face's frame: face -> photo -> LR crop -> result pixels
                placement, photo_to_crop, n = frames[stem]
                to_photo = np.vstack([placement.face_to_photo, [0, 0, 1]])
                to_crop = np.vstack([photo_to_crop, [0, 0, 1]])
                face_to_result = (np.diag([res / n, res / n, 1]) @ to_crop @ to_photo)[:2]
                result = warp_affine(result, face_to_result, (res, res))
            scores[name]["psnr"].append(psnr(np.clip(result, 0, 1), face))
            scores[name]["lr_l1"].append(float(rows[name][stem]["lr_l1_final"]))
    summary = {"faces": len(faces), "width_px": args.width, "lr_size": size, "detected": found,
               "precision": trainer.precision,
               **{name: {k: {"mean": float(np.mean(v)), "sem": float(np.std(v, ddof=1) / np.sqrt(len(v))),
                             "n": len(v)} for k, v in s.items()} for name, s in scores.items()}}
    table = ("| input | faces | PSNR vs true face (dB) | LR consistency |\n|---|---|---|---|\n" +
             "".join(f"| {name} | {summary[name]['psnr']['n']} | {summary[name]['psnr']['mean']:.2f} ± "
                     f"{1.96 * summary[name]['psnr']['sem']:.2f} | {summary[name]['lr_l1']['mean']:.4f} |\n"
                     for name in scores))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    (args.work_dir / "photo_inversion.json").write_text(json.dumps(summary, indent=2))
    (args.work_dir / "photo_inversion.md").write_text(table)
    print(json.dumps(summary))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
