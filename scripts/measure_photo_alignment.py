"""How well ``rls_lightning.photos`` finds and aligns small real faces, and what scores faceless photos get.

    python scripts/measure_photo_alignment.py --data ../shared/data/faces64/faces64.zip
    python scripts/measure_photo_alignment.py --data ../shared/data/faces64/faces64.zip --faces 40 --faceless 8  # quick

Takes the faces the demo training held out (the seeded split of ``train_stylegan``: ``--holdout 1000
--split-seed 0``, as ``scripts/evaluate_demo_model.py``), read from the zip in memory and never written anywhere,
and places each (``photos.synthetic.compose``) into a ``--photo-size`` background by a random similarity
(rotation within +-30 degrees, random position) at faces64 crop widths of 64, 32, 16 and 12 photo pixels,
several faces to a photo. Each photo goes through ``detect_faces`` and ``crop_transform``; a face counts as found
when a detection's box centre lies within 0.3 crop widths of the face square's centre. For each found face the
*corner error* is the mean distance between the four corners of the recovered faces64 crop and those of the face
square, in LR pixels (the crop's side is ``lr_size_for(width, 64)`` LR pixels). Since the faces come in the
faces64 framing, the error at 64 px is the floor: how far MTCNN's landmarks plus the FFHQ recipe are from the
photo's own alignment; the error *vs. large rendering* compares instead with the corners the pipeline itself
finds on the same face rendered upright 128 px wide, which isolates what small sizes cost. Configurations:
``plain`` (MTCNN on the photo as is), ``search`` (the enlarged search pass alone), ``search+window`` (plus one
refinement window, the box 64 px wide), ``search+window+mirror`` (and its mirror image) and ``default`` (what
``detect_faces`` does: windows at ``REFINE_FACE_PX`` and their mirrors).

Also runs ``detect_faces(min_score=0)`` on faceless backgrounds of every kind and size and reports the scores
of what it finds there, and the score quantiles of the true faces, which is what ``DEFAULT_MIN_SCORE`` is chosen
from. Writes ``<work-dir>/photo_alignment.json`` and ``photo_alignment.md`` and prints both.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rls_lightning.atomic import atomic_write_path
from rls_lightning.photos import detection
from rls_lightning.photos.alignment import crop_transform, crop_corners_in_photo
from rls_lightning.photos.crop import lr_size_for
from rls_lightning.photos.synthetic import Placement, background, compose, similarity
from rls_lightning.stylegan.image_folder import list_images, split_names

WIDTHS = (64, 32, 16, 12)
MIN_SCORES = (0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)  # the candidates for DEFAULT_MIN_SCORE
GENERATOR_RESOLUTION = 64
CONFIGS = {  # name -> (detect_faces keyword arguments, refinement window widths, mirror the windows)
    "plain": (dict(upsample=1.0, refine=False), (), False),
    "search": (dict(refine=False), (), False),
    "search+window": (dict(refine=True), (64.0,), False),
    "search+window+mirror": (dict(refine=True), (64.0,), True),
    "default": (dict(refine=True), detection.REFINE_FACE_PX, True),
}


def held_out_faces(data: Path, count: int, holdout: int, seed: int) -> list[np.ndarray]:
    """The first ``count`` held-out faces, decoded in memory as uint8 [64, 64, 3]."""
    _, held = split_names(list_images(data), holdout, seed)
    with zipfile.ZipFile(data) as archive:
        return [np.asarray(Image.open(io.BytesIO(archive.read(name))).convert("RGB")) for name in held[:count]]


def random_placements(width: float, size: tuple[int, int], rng: np.random.Generator, most: int) -> list[Placement]:
    """Up to ``most`` non-overlapping faces of crop width ``width``, all inside a ``size`` (w, h) photo."""
    radius = width / math.sqrt(2)  # a turned square stays within this distance of its centre
    placements: list[Placement] = []
    for _ in range(200):
        if len(placements) == most:
            break
        centre = rng.uniform([radius + 2, radius + 2], [size[0] - radius - 2, size[1] - radius - 2])
        if any(np.hypot(*(centre - p.corners().mean(axis=0))) < 2.2 * radius for p in placements):
            continue
        placements.append(Placement(similarity(width, 64, rng.uniform(-30, 30), tuple(centre)), 64))
    return placements


def match(placement: Placement, found: list[detection.Detection]) -> detection.Detection | None:
    """The detection whose box centre is nearest the face square's centre, if within 0.3 widths."""
    centre = placement.corners().mean(axis=0)
    best, best_distance = None, 0.3 * placement.width
    for det in found:
        distance = float(np.hypot(*((det.box[:2] + det.box[2:]) / 2 - centre)))
        if distance < best_distance:
            best, best_distance = det, distance
    return best


def recovered_corners(landmarks: np.ndarray, n: int) -> np.ndarray:
    return crop_corners_in_photo(crop_transform(landmarks, "faces64", n), n)


def corner_error(placement: Placement, corners: np.ndarray) -> float:
    """Mean distance of ``corners`` (photo coordinates) from the face square's, in LR pixels."""
    n = lr_size_for(placement.width, GENERATOR_RESOLUTION)
    return float(np.mean(np.hypot(*(corners - placement.corners()).T)) * n / placement.width)


def corner_bias(placement: Placement, corners: np.ndarray) -> np.ndarray:
    """``[4, 2]`` signed offsets of ``corners`` from the face square's, in the face's own axes, as fractions of its
    side."""
    linear = placement.face_to_photo[:, :2]
    return (corners - placement.corners()) @ np.linalg.inv(linear).T / placement.face_size


def reference_landmarks(faces: list[np.ndarray], seed: int) -> list[np.ndarray | None]:
    """Each face's landmarks found by ``detect_faces`` on a large upright rendering (the face 128 px wide),
    in the face image's own coordinates: the pipeline's answer with plenty of pixels, to tell what small sizes
    cost apart from the framing floor."""
    rng = np.random.default_rng([seed, 128])
    out = []
    for face in faces:
        placement = Placement(similarity(128, 64, 0.0, (128, 128)), 64)
        photo = compose(background(256, 256, rng, "smooth"), [face], [placement], supersample=2)
        det = match(placement, detection.detect_faces(photo, min_score=0.0))
        if det is None:
            out.append(None)
            continue
        to_face = np.linalg.inv(placement.face_to_photo[:, :2])
        out.append((det.landmarks - placement.face_to_photo[:, 2]) @ to_face.T)
    return out


def summarize(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": len(a), "mean": float(a.mean()), "median": float(np.median(a)), "p95": float(np.quantile(a, 0.95)),
            "max": float(a.max())}


def measure_faces(faces: list[np.ndarray], size: tuple[int, int], seed: int, configs: list[str]) -> dict:
    references = reference_landmarks(faces, seed)
    default_windows = detection.REFINE_FACE_PX
    results: dict = {}
    for width in WIDTHS:
        rng = np.random.default_rng([seed, width])
        most = max(1, min(8, int(size[0] * size[1] / (3.2 * width) ** 2)))
        photos = []
        i = 0
        while i < len(faces):
            placements = random_placements(width, size, rng, min(most, len(faces) - i))
            group = faces[i:i + len(placements)]
            photo = compose(background(size[1], size[0], rng), group, placements,
                            supersample=math.ceil(128 / width))
            photos.append((photo, placements, list(range(i, i + len(placements)))))
            i += len(placements)
        for name in configs:
            kwargs, windows, mirror = CONFIGS[name]
            detection.REFINE_FACE_PX, detection._REFINE_MIRROR = windows or default_windows, mirror
            errors, consistency, biases, scores, misses, extra = [], [], [], [], 0, []
            start = time.perf_counter()
            for photo, placements, indices in photos:
                found = detection.detect_faces(photo, min_score=0.0, **kwargs)
                used = set()
                for placement, index in zip(placements, indices):
                    det = match(placement, found)
                    if det is None:
                        misses += 1
                        continue
                    used.add(id(det))
                    n = lr_size_for(placement.width, GENERATOR_RESOLUTION)
                    corners = recovered_corners(det.landmarks, n)
                    errors.append(corner_error(placement, corners))
                    biases.append(corner_bias(placement, corners))
                    scores.append(det.score)
                    if references[index] is not None:
                        expected = recovered_corners(references[index] @ placement.face_to_photo[:, :2].T
                                                     + placement.face_to_photo[:, 2], n)
                        consistency.append(float(np.mean(np.hypot(*(corners - expected).T)) * n / placement.width))
                extra += [d.score for d in found if id(d) not in used]
            seconds = time.perf_counter() - start
            total = len(faces)
            results.setdefault(str(width), {})[name] = {
                "faces": total, "photos": len(photos), "found": total - misses,
                "detection_rate": (total - misses) / total,
                "detection_rate_at_min_score": {str(t): sum(s >= t for s in scores) / total for t in MIN_SCORES},
                "corner_error_lr_px": summarize(errors),
                "error_vs_large_rendering_lr_px": summarize(consistency),
                # mean signed corner offset (TL, BL, BR, TR) in the face's axes, fractions of its side
                "corner_bias": np.mean(biases, axis=0).round(4).tolist() if biases else None,
                "true_face_score_quantiles": {q: float(np.quantile(scores, float(q))) for q in ("0.01", "0.05", "0.5")}
                if scores else {},
                "unmatched_detections": len(extra),
                "unmatched_scores_max": max(extra, default=None),
                "seconds_per_photo": seconds / len(photos),
            }
            print(f"width {width:3d} {name:14s} found {total - misses}/{total} error {summarize(errors)} "
                  f"vs-large {summarize(consistency)} ({seconds / len(photos):.2f} s/photo)", flush=True)
    detection.REFINE_FACE_PX, detection._REFINE_MIRROR = default_windows, True
    return results, sum(r is not None for r in references)


def jigsaw(faces: list[np.ndarray], tile: int, rng: np.random.Generator) -> np.ndarray:
    """16 faces cut into ``tile``-pixel squares, shuffled: faceless, but made of eyes, mouths and skin."""
    k = 64 // tile
    picked = rng.choice(len(faces), 16, replace=False)
    tiles = np.concatenate([faces[i].reshape(k, tile, k, tile, 3).transpose(0, 2, 1, 3, 4).reshape(-1, tile, tile, 3)
                            for i in picked])
    n = math.isqrt(len(tiles))
    grid = tiles[rng.permutation(len(tiles))[:n * n]].reshape(n, n, tile, tile, 3)
    return grid.transpose(0, 2, 1, 3, 4).reshape(n * tile, n * tile, 3)


def faceless_sources(faces: list[np.ndarray]) -> dict:
    """Faceless images: real-world ones that ship with matplotlib (its ``sample_data``: a shaded-relief map, an
    MRI slice, an illustration, the part of the Grace Hopper portrait below her chin), and jigsaws of face tiles
    (made afresh for each photo)."""
    from matplotlib import colormaps, get_data_path

    data = Path(get_data_path()) / "sample_data"
    relief = np.load(data / "jacksboro_fault_dem.npz")["elevation"].astype(np.float64)
    relief = (relief - relief.min()) / (relief.max() - relief.min())
    with gzip.open(data / "s1045.ima.gz") as file:
        mri = np.frombuffer(file.read(), np.uint16).reshape(256, 256).astype(np.float64)
    mri /= mri.max()
    return {
        "terrain": (colormaps["terrain"](relief)[..., :3] * 255).astype(np.uint8),
        "mri": np.repeat((mri * 255).astype(np.uint8)[..., None], 3, axis=2),
        "illustration": np.asarray(Image.open(data / "Minduka_Present_Blue_Pack.png").convert("RGB")),
        "photo without face": np.asarray(Image.open(data / "grace_hopper.jpg").convert("RGB"))[350:],
        "face-tile jigsaw 8 px": lambda rng: jigsaw(faces, 8, rng),
        "face-tile jigsaw 16 px": lambda rng: jigsaw(faces, 16, rng),
    }


def measure_false_positives(seed: int, count: int, faces: list[np.ndarray]) -> dict:
    """``detect_faces(min_score=0)`` on faceless images of each kind, at a few sizes (random crops of the
    real-world ones, resized)."""
    rng = np.random.default_rng([seed, 999])
    scores: dict[str, list[float]] = {}
    sizes = [(64, 48), (160, 120), (320, 240), (640, 480)]
    kinds: dict = {kind: None for kind in ("smooth", "gradient", "noise", "texture", "flat")}
    kinds.update(faceless_sources(faces))
    for kind, source in kinds.items():
        for i in range(count):
            w, h = sizes[i % len(sizes)]
            if source is None:
                image = background(h, w, rng, kind)
            else:
                whole = source(rng) if callable(source) else source
                side = rng.uniform(0.5, 1.0)
                cw, ch = int(whole.shape[1] * side), int(whole.shape[0] * side)
                x0, y0 = rng.integers(0, whole.shape[1] - cw + 1), rng.integers(0, whole.shape[0] - ch + 1)
                image = np.asarray(Image.fromarray(whole[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BICUBIC))
            found = detection.detect_faces(image, min_score=0.0)
            scores.setdefault(kind, []).extend(d.score for d in found)
    every = [s for v in scores.values() for s in v]
    return {"photos": count * len(kinds), "detections": len(every), "max_score": max(every, default=None),
            "per_kind": {k: {"photos": count, "detections": len(v), "max": max(v, default=None),
                             "at_or_above": {str(t): sum(x >= t for x in v) for t in MIN_SCORES}}
                         for k, v in scores.items()}}


def markdown(results: dict, fp: dict) -> str:
    lines = ["| crop width (photo px) | LR side | config | detected | corner error mean / median / p95 (LR px) "
             "| vs. large rendering mean / median / p95 (LR px) | s / photo |", "|---|---|---|---|---|---|---|"]

    def cell(e: dict) -> str:
        return f"{e['mean']:.2f} / {e['median']:.2f} / {e['p95']:.2f}" if e["n"] else "-"

    for width, per_config in results.items():
        for name, r in per_config.items():
            lines.append(f"| {width} | {lr_size_for(float(width), GENERATOR_RESOLUTION)} | {name} | "
                         f"{r['found']}/{r['faces']} ({100 * r['detection_rate']:.1f}%) | "
                         f"{cell(r['corner_error_lr_px'])} | {cell(r['error_vs_large_rendering_lr_px'])} | "
                         f"{r['seconds_per_photo']:.2f} |")
    lines += ["", "Detection rate (default config) and false detections on faceless photos, by min_score:", "",
              "| min_score | " + " | ".join(f"found at {w} px" for w in results) + " | "
              + " | ".join(f"false: {k} ({v['photos']})" for k, v in fp["per_kind"].items()) + " |",
              "|---" * (1 + len(results) + len(fp["per_kind"])) + "|"]
    for t in MIN_SCORES:
        found = [f"{100 * r['default']['detection_rate_at_min_score'][str(t)]:.1f}%" if "default" in r else "-"
                 for r in results.values()]
        false = [str(v["at_or_above"][str(t)]) for v in fp["per_kind"].values()]
        lines.append(f"| {t} | " + " | ".join(found) + " | " + " | ".join(false) + " |")
    lines += ["", "Mean signed corner offset of the recovered crop from the face square (default config), in the "
              "face's axes, fractions of its side, corners TL / BL / BR / TR (inwards: the crop is smaller):", ""]
    for width, per_config in results.items():
        if "default" in per_config and per_config["default"]["corner_bias"]:
            bias = per_config["default"]["corner_bias"]
            lines.append(f"- {width} px: " + " / ".join(f"({x:+.3f}, {y:+.3f})" for x, y in bias))
    lines.append("")
    lines.append(f"Faceless photos: {fp['photos']}, detections at min_score 0: {fp['detections']}, "
                 f"highest score {fp['max_score']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/faces64/faces64.zip"))
    parser.add_argument("--holdout", type=int, default=1000)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--faces", type=int, default=200, help="held-out faces per width")
    parser.add_argument("--photo-size", type=int, nargs=2, default=(256, 192), metavar=("W", "H"))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--faceless", type=int, default=40, help="faceless photos per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/photo-alignment"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    faces = held_out_faces(args.data, args.faces, args.holdout, args.split_seed)
    results, references = measure_faces(faces, tuple(args.photo_size), args.seed, args.configs)
    fp = measure_false_positives(args.seed, args.faceless, faces)
    report = {"faces_per_width": len(faces), "photo_size": list(args.photo_size), "holdout": args.holdout,
              "split_seed": args.split_seed, "seed": args.seed, "large_renderings_found": references,
              "default_min_score": detection.DEFAULT_MIN_SCORE,
              "search_face_px": detection.SEARCH_FACE_PX, "refine_face_px": detection.REFINE_FACE_PX,
              "widths": results, "faceless": fp}
    table = markdown(results, fp)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write_path(args.work_dir / "photo_alignment.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    with atomic_write_path(args.work_dir / "photo_alignment.md") as tmp:
        tmp.write_text(table + "\n")
    print(json.dumps(report, indent=2))
    print(table)


if __name__ == "__main__":
    main()
