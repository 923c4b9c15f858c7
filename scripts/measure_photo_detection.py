"""How often ``detect_faces`` takes a non-face for a face, and how many real faces its checks cost, on real photos.

    python scripts/measure_photo_detection.py --faces-dir real/with_faces --faceless-dir real/faceless \\
        --data ../shared/data/faces64/faces64.zip

Every detection MTCNN returns (score >= 0.7, its own floor) is collected with ``checks=False`` and judged afterwards
by each rule (minimum score, minimum refinement views, minimum face width), so one pass gives every row:

* ``--faceless-dir``: real photographs without a human face (animals, objects, scenes, textures): every detection
  there is false;
* ``--faces-dir``: real photographs with faces, at their own size, then reduced (Pillow's antialiased bicubic) so
  that their largest face is ``--reduced-widths`` px wide: a detection counts as true when its box centre lies
  inside the box of a detection the default rule accepts at full size (those were checked by eye; the script
  writes ``<work-dir>/full_size_faces.png`` to check them again), false otherwise; a full-size face is found at a
  reduced size when some accepted detection there lies on it;
* ``--data``: held-out faces64 faces composited at known places into synthetic backgrounds (as
  ``measure_photo_alignment.py``): the share found at each crop width; and faceless synthetic backgrounds and
  jigsaws of face tiles (``measure_photo_alignment.faceless_sources``).

Prints Markdown tables; writes ``<work-dir>/photo_detection.json``. Nothing of the photos is kept but that sheet.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rls_lightning.atomic import atomic_write_path
from rls_lightning.photos import detection
from rls_lightning.photos.synthetic import background, compose

RULES = {  # name -> (min score, min views, min face width)
    "score 0.95 only (before)": (0.95, 0, 0.0),
    "score 0.9, width >= 10": (0.9, 0, 10.0),
    "score 0.9, views >= 2, width >= 10": (0.9, 2, 10.0),
    "score 0.9, views >= 3, width >= 10": (0.9, 3, 10.0),
    "score 0.95, views >= 3, width >= 10": (0.95, 3, 10.0),
    "score 0.7, views >= 3, width >= 10": (0.7, 3, 10.0),
}
WIDTHS = (10, 12, 14, 16, 24, 32, 64)


def describe(det: detection.Detection) -> dict:
    return {"score": det.score, "views": det.views, "width": detection.face_width(det), "box": det.box.tolist()}


def accepted(d: dict, rule: tuple[float, int, float]) -> bool:
    score, views, width = rule
    return d["score"] >= score and d["views"] >= views and d["width"] >= width


def everything(photo: np.ndarray) -> list[dict]:
    return [describe(d) for d in detection.detect_faces(photo, min_score=0.7, max_faces=1000, checks=False)]


def rgb(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def inside(point: np.ndarray, box: list[float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def measure_real(faces_dir: Path, faceless_dir: Path, widths: list[float], work_dir: Path) -> dict:
    faceless = {p.name: everything(np.asarray(rgb(p))) for p in sorted(faceless_dir.iterdir()) if p.is_file()}
    default = (detection.DEFAULT_MIN_SCORE, detection.MIN_VIEWS, detection.MIN_FACE_WIDTH_PX)
    with_faces = {}
    sheet = []
    for path in sorted(p for p in faces_dir.iterdir() if p.is_file()):
        original = rgb(path)
        full = everything(np.asarray(original))
        truth = [d for d in full if accepted(d, default)]
        sheet += [(original, d["box"]) for d in truth]
        entry = {"full": full, "faces": len(truth), "reduced": {}}
        widest = max((d["width"] for d in truth), default=0.0)
        for target in widths:
            if widest <= target:
                continue
            scale = widest / target
            small = original.resize((max(1, round(original.width / scale)), max(1, round(original.height / scale))),
                                    Image.BICUBIC)
            sx, sy = original.width / small.width, original.height / small.height
            found = everything(np.asarray(small))
            for d in found:
                centre = np.array([(d["box"][0] + d["box"][2]) / 2 * sx, (d["box"][1] + d["box"][3]) / 2 * sy])
                d["true"] = any(inside(centre, t["box"]) for t in truth)
                d["on"] = [i for i, t in enumerate(truth) if inside(centre, t["box"])]
                d["truth_width"] = [truth[i]["width"] / scale for i in d["on"]]
            entry["reduced"][str(target)] = found
        with_faces[path.name] = entry
        print(f"{path.name}: {len(truth)} face(s) at full size", flush=True)
    tile = 96
    grid = Image.new("RGB", (8 * tile, math.ceil(len(sheet) / 8) * tile), "white")
    for i, (image, box) in enumerate(sheet):
        cx, cy, side = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], box[3] - box[1])
        grid.paste(image.crop((int(cx - side), int(cy - side), int(cx + side), int(cy + side))).resize((tile, tile)),
                   ((i % 8) * tile, (i // 8) * tile))
    grid.save(work_dir / "full_size_faces.png")
    return {"faceless": faceless, "with_faces": with_faces}


def measure_faces64(data: Path, count: int) -> dict:
    import measure_photo_alignment as alignment

    faces = alignment.held_out_faces(data, count, 1000, 0)
    size = (256, 192)
    out: dict = {}
    for width in WIDTHS:
        rng = np.random.default_rng([1, width])
        most = max(1, min(8, int(size[0] * size[1] / (3.2 * width) ** 2)))
        i = 0
        while i < len(faces):
            placements = alignment.random_placements(width, size, rng, min(most, len(faces) - i))
            photo = compose(background(size[1], size[0], rng), faces[i:i + len(placements)], placements,
                            supersample=math.ceil(128 / width))
            i += len(placements)
            found = detection.detect_faces(photo, min_score=0.7, checks=False)
            for placement in placements:
                det = alignment.match(placement, found)
                out.setdefault(str(width), []).append(describe(det) if det is not None else None)
    rng = np.random.default_rng([0, 999])
    kinds: dict = {kind: None for kind in ("smooth", "gradient", "noise", "texture", "flat")}
    kinds.update(alignment.faceless_sources(faces))
    sizes = [(64, 48), (160, 120), (320, 240), (640, 480)]
    synthetic: dict = {}
    for kind, source in kinds.items():
        for k in range(count // 6):
            w, h = sizes[k % len(sizes)]
            if source is None:
                image = background(h, w, rng, kind)
            else:
                whole = source(rng) if callable(source) else source
                side = rng.uniform(0.5, 1.0)  # a random part of it, as measure_photo_alignment.py
                cw, ch = int(whole.shape[1] * side), int(whole.shape[0] * side)
                x0, y0 = rng.integers(0, whole.shape[1] - cw + 1), rng.integers(0, whole.shape[0] - ch + 1)
                image = np.asarray(Image.fromarray(whole[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BICUBIC))
            synthetic.setdefault(kind, []).extend(everything(image))
    return {"faces64": out, "synthetic_faceless": synthetic, "synthetic_photos_per_kind": count // 6}


def tables(real: dict, synth: dict | None, widths: list[float]) -> str:
    lines = ["| rule | false on faceless photos | false on photos with faces (full size / reduced) | faces found "
             "at full size | " + " | ".join(f"found, largest face {w:g} px" for w in widths) + " |",
             "|---" * (4 + len(widths)) + "|"]
    default = (detection.DEFAULT_MIN_SCORE, detection.MIN_VIEWS, detection.MIN_FACE_WIDTH_PX)
    total = sum(e["faces"] for e in real["with_faces"].values())
    for name, rule in RULES.items():
        false_faceless = sum(accepted(d, rule) for ds in real["faceless"].values() for d in ds)
        full_false = 0
        full_found = 0
        for e in real["with_faces"].values():
            truth = [d for d in e["full"] if accepted(d, default)]
            kept = [d for d in e["full"] if accepted(d, rule)]
            full_found += sum(any(d is t for d in kept) for t in truth)
            full_false += sum(not accepted(d, default) for d in kept)
        reduced_false, cells = 0, []
        for w in widths:
            faces, found = 0, 0
            for e in real["with_faces"].values():
                ds = e["reduced"].get(str(w))
                if ds is None:
                    continue
                faces += e["faces"]
                kept = [d for d in ds if accepted(d, rule)]
                reduced_false += sum(not d["true"] for d in kept)
                found += len({i for d in kept for i in d["on"]})
            cells.append(f"{found}/{faces}")
        lines.append(f"| {name} | {false_faceless} in {len(real['faceless'])} | {full_false} / {reduced_false} | "
                     f"{full_found}/{total} | " + " | ".join(cells) + " |")
    if synth is not None:
        lines += ["", "| rule | synthetic faceless and face-tile jigsaws: false | "
                  + " | ".join(f"faces64 at {w} px" for w in WIDTHS) + " |", "|---" * (2 + len(WIDTHS)) + "|"]
        for name, rule in RULES.items():
            false = sum(accepted(d, rule) for ds in synth["synthetic_faceless"].values() for d in ds)
            cells = []
            for w in WIDTHS:
                ds = synth["faces64"][str(w)]
                cells.append(f"{sum(d is not None and accepted(d, rule) for d in ds) / len(ds):.0%}")
            photos = synth["synthetic_photos_per_kind"] * len(synth["synthetic_faceless"])
            lines.append(f"| {name} | {false} in {photos} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces-dir", type=Path, required=True)
    parser.add_argument("--faceless-dir", type=Path, required=True)
    parser.add_argument("--reduced-widths", type=float, nargs="+", default=[32, 16, 12])
    parser.add_argument("--data", type=Path, default=None, help="faces64.zip: also the synthetic measurements")
    parser.add_argument("--faces", type=int, default=120, help="faces64 faces per width")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/photo-detection"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    real = measure_real(args.faces_dir, args.faceless_dir, args.reduced_widths, args.work_dir)
    synth = measure_faces64(args.data, args.faces) if args.data is not None else None
    with atomic_write_path(args.work_dir / "photo_detection.json") as tmp:
        tmp.write_text(json.dumps({"real": real, "synthetic": synth}))
    print(tables(real, synth, args.reduced_widths))


if __name__ == "__main__":
    main()
