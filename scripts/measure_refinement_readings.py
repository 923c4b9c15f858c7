"""RLS+ under the readings of the paper's learning rates, on held-out real faces (issue 21).

    python scripts/measure_refinement_readings.py --data ../shared/data/faces64/faces64.zip --limit 200

For each held-out face of the demo training split (``--holdout 1000 --split-seed 0``, as the model card) and each
factor, the 8-bit bicubic LR input is inverted once with RLS (the anchor, shared), then refined from that same
anchor with each ``--presets`` RLS+ setting (default: ``rls+``, the paper read so that its Table 2 can hold;
``rls+literal``, one rate 1e-4 for everything; ``no-l1-ball``, the ablation). Per face and method: PSNR (RGB) and
SSIM (Y) to the HR face, both on the 8-bit result as saved; LR consistency (mean |D(x) - y| on [0, 1]); and for RLS+
how far w moved (largest row distance / radius) and how many W+ rows lie on the ball's boundary.

Writes ``<work-dir>/x<f>/batch<k>.json`` per batch (a rerun continues where it stopped), ``per_face.csv`` and
``summary.json`` (means with 95% intervals, 1.96 SD / sqrt(n); the share of faces on which the ball binds; paired
differences between the presets), and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import time
from pathlib import Path
from typing import Callable

import torch

from rls_lightning.atomic import atomic_write_path
from rls_lightning.runtime import resolve_precision
from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR
from rls_lightning.degradations import downsample_bicubic, resize_bicubic
from rls_lightning.flow.checkpoint import load_flow
from rls_lightning.inversion.job import InversionJob, TrainerOptions
from rls_lightning.inversion.presets import get_preset
from rls_lightning.lr_images import LowResImage
from rls_lightning.metrics.fidelity import psnr, ssim
from rls_lightning.stylegan import load_generator
from rls_lightning.stylegan.image_folder import list_images, load_images, split_names


def eight_bit(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images as saved in a PNG, back on [0, 1]."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round() / 255


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (normal approximation)."""
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), 1.96 * float(t.std()) / math.sqrt(len(t)) if len(t) > 1 else float("nan")


def scores(images: torch.Tensor, hr: torch.Tensor) -> tuple[list[float], list[float]]:
    saved = eight_bit(images)
    return psnr(saved, hr).tolist(), ssim(saved, hr, channels="y").tolist()


def run_batch(job: InversionJob, presets: list[str], stems: list[str], hr: torch.Tensor, factor: int) -> list[dict]:
    lr_saved = eight_bit(downsample_bicubic(hr * 2 - 1, factor)) * 2 - 1  # the 8-bit PNG a user would have
    items = [(LowResImage(path=Path(f"{s}.png"), stem=s, pixels=lr_saved[i], factor=factor), 0)
             for i, s in enumerate(stems)]
    start = time.perf_counter()
    anchors = job.solver.run_search(items)
    rows = []
    bicubic = resize_bicubic(lr_saved, hr.shape[-1])
    for method, images, lr_l1 in (("bicubic", bicubic, None),
                                  ("rls", torch.cat([a.image_rls for a in anchors]), [a.lr_l1_rls for a in anchors])):
        p, s = scores(images, hr)
        if lr_l1 is None:
            lr_l1 = (0.5 * (downsample_bicubic(images, factor) - lr_saved).abs().flatten(1).mean(1)).tolist()
        rows += [{"face": stem, "factor": factor, "method": method, "psnr": p[i], "ssim": s[i], "lr_l1": lr_l1[i]}
                 for i, stem in enumerate(stems)]
    for preset in presets:
        refined = [copy.copy(a) for a in anchors]
        job.solver.run_refinement(items, refined, settings=get_preset(preset).refine)
        p, s = scores(torch.cat([r.image for r in refined]), hr)
        rows += [{"face": stem, "factor": factor, "method": preset, "psnr": p[i], "ssim": s[i],
                  "lr_l1": refined[i].lr_l1, "ball_reach": refined[i].ball_reach,
                  "rows_on_ball": refined[i].rows_on_ball, "refine_steps": refined[i].refine_steps}
                 for i, stem in enumerate(stems)]
    print(f"x{factor}: {len(stems)} faces in {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def summarise(rows: list[dict], presets: list[str]) -> list[dict]:
    summary = []
    for factor in sorted({r["factor"] for r in rows}):
        of_factor = [r for r in rows if r["factor"] == factor]
        by_method = {m: sorted((r for r in of_factor if r["method"] == m), key=lambda r: r["face"])
                     for m in ["bicubic", "rls", *presets]}
        for method, faces in by_method.items():
            entry = {"factor": factor, "method": method, "faces": len(faces)}
            for key in ("psnr", "ssim", "lr_l1"):
                entry[key], entry[f"{key}_ci95"] = mean_ci([r[key] for r in faces])
            if method in presets:
                entry["ball_binds"] = sum(1 for r in faces if (r["rows_on_ball"] or 0) > 0) / len(faces)
                entry["rows_on_ball"] = sum(r["rows_on_ball"] or 0 for r in faces) / len(faces)
                entry["ball_reach"] = mean_ci([r["ball_reach"] for r in faces])[0]
                entry["refine_steps"] = sum(r["refine_steps"] for r in faces) / len(faces)
                for other in presets:
                    if other != method:
                        entry[f"psnr_minus_{other}"] = mean_ci([a["psnr"] - b["psnr"] for a, b in
                                                                 zip(faces, by_method[other])])
                        entry[f"identical_to_{other}"] = sum(1 for a, b in zip(faces, by_method[other])
                                                             if a["psnr"] == b["psnr"]) / len(faces)
            summary.append(entry)
    return summary


def markdown(summary: list[dict]) -> str:
    lines = ["| factor | method | faces | PSNR (dB) | SSIM (Y) | LR consistency | ball binds | rows on ball "
             "| max row distance / radius | RLS+ steps |", "|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        ball = (f"{e['ball_binds']:.0%} | {e['rows_on_ball']:.1f} | {e['ball_reach']:.2f} | {e['refine_steps']:.1f}"
                if "ball_binds" in e else " | | | ")
        lines.append(f"| {e['factor']}x | {e['method']} | {e['faces']} | {e['psnr']:.2f} ± {e['psnr_ci95']:.2f} "
                     f"| {e['ssim']:.4f} ± {e['ssim_ci95']:.4f} | {e['lr_l1']:.4f} ± {e['lr_l1_ci95']:.4f} | {ball} |")
    return "\n".join(lines)


def add_held_out_options(parser: argparse.ArgumentParser) -> None:
    """The model, the held-out faces (the model card's split) and the factors of a measurement on real faces."""
    parser.add_argument("--data", type=Path, required=True, help="the demo training zip or folder (faces64.zip)")
    parser.add_argument("--generator", type=Path, default=DEMO_GENERATOR)
    parser.add_argument("--flow", type=Path, default=DEMO_FLOW)
    parser.add_argument("--holdout", type=int, default=1000, help="as in training")
    parser.add_argument("--split-seed", type=int, default=0, help="as in training")
    parser.add_argument("--limit", type=int, default=200, help="the first N held-out faces")
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])


def held_out_faces(args: argparse.Namespace) -> tuple:
    """``(generator, flow, names, hr)``: the first ``--limit`` held-out faces as ``[N, C, R, R]`` on [0, 1]."""
    generator, flow = load_generator(args.generator), load_flow(args.flow)
    _, held_out = split_names(list_images(args.data), args.holdout, args.split_seed)
    names = held_out[:args.limit]
    hr_all = load_images(args.data, names, resolution=generator.img_resolution).float() / 255
    return generator, flow, names, hr_all


def add_run_options(parser: argparse.ArgumentParser, work_dir: str, batch_size: int) -> None:
    """Batch size, precision and the folder of a resumable measurement."""
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--precision", default="32-true", help="'auto', '32-true' or 'bf16-mixed'")
    parser.add_argument("--work-dir", type=Path, default=Path(work_dir))


def resumable_batches(folder: Path, names: list[str], batch_size: int,
                      run: Callable[[int, int, list[str]], list[dict] | None]) -> list[dict]:
    """The rows of every batch of ``names``: read from ``folder/batch<k>.json`` where a run wrote them for the same
    faces, else ``run(k, start, stems)`` (None: not now) and written there atomically, so a rerun continues."""
    rows = []
    for k, start in enumerate(range(0, len(names), batch_size)):
        path = folder / f"batch{k}.json"
        stems = [Path(n).stem for n in names[start:start + batch_size]]
        if path.is_file() and json.loads(path.read_text())["faces"] == stems:
            rows += json.loads(path.read_text())["rows"]
            continue
        folder.mkdir(parents=True, exist_ok=True)
        batch_rows = run(k, start, stems)
        if batch_rows is None:
            continue
        with atomic_write_path(path) as tmp:
            tmp.write_text(json.dumps({"faces": stems, "rows": batch_rows}))
        rows += batch_rows
    return rows


def write_rows(path: Path, rows: list[dict]) -> None:
    """``per_face.csv``: one row per face and method, the columns of every row."""
    with atomic_write_path(path) as tmp, tmp.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_held_out_options(parser)
    parser.add_argument("--presets", nargs="+", default=["rls+", "rls+literal", "no-l1-ball"],
                        help="RLS+ settings compared from the same RLS anchor")
    add_run_options(parser, "runs/refinement-readings", 16)
    args = parser.parse_args(argv)
    precision = resolve_precision(args.precision, "cpu")
    generator, flow, names, hr_all = held_out_faces(args)
    job = InversionJob(generator, flow, get_preset("rls+"), args.work_dir, batch_size=args.batch_size,
                       trainer=TrainerOptions(precision=precision), log=lambda message: None)
    rows = []
    for factor in args.factors:
        rows += resumable_batches(args.work_dir / f"x{factor}", names, args.batch_size, lambda k, start, stems: run_batch(
            job, args.presets, stems, hr_all[start:start + args.batch_size], factor))
    write_rows(args.work_dir / "per_face.csv", rows)
    summary = summarise(rows, args.presets)
    with atomic_write_path(args.work_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"precision": precision, "generator": str(args.generator), "faces": len(names),
                                   "presets": args.presets, "results": summary}, indent=2))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
