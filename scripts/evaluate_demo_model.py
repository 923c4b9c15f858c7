"""The model card's numbers: how well the demo generator represents unseen real faces.

    python scripts/evaluate_demo_model.py --data ../shared/data/faces64/faces64.zip              # all 1,000
    python scripts/evaluate_demo_model.py --data ../shared/data/faces64/faces64.zip --limit 64   # a quick look

Takes the faces the demo training held out (the same seeded split: ``--holdout 1000 --split-seed 0`` of
``train_stylegan``), makes their bicubic LR versions at each factor (8-bit PNGs, as a user's files), runs
``invert.py`` with the paper's RLS+ preset on them (resumable: rerun to continue), and compares the results with
the held-out HR faces: mean PSNR and LR consistency (mean |D(x) - y| on the [0, 1] scale), next to bicubic
upsampling of the same LR input and the RLS anchor (``<stem>_rls.png``, before the generator is tuned), with the
paired per-face PSNR difference to bicubic and its 95% confidence interval (normal approximation, 1.96 standard
errors). Precision 'auto' is bf16-mixed where the hardware has native bf16 (about 1.5x faster on the build CPU;
its results agree with float32 ones to about 35 dB PSNR, benchmarks/RESULTS.md), and the precision used is
recorded. Writes ``<work-dir>/heldout.json`` and the per-face values in ``<work-dir>/heldout_per_face.csv``,
prints a Markdown table, and leaves ``<work-dir>/rls+_<f>x/overview.png`` (LR | RLS | RLS+ | HR of the first 16
faces).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import torch

from rls_lightning.atomic import atomic_write_path
from rls_lightning.cli import invert
from rls_lightning.runtime import resolve_precision
from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR
from rls_lightning.degradations import downsample_bicubic, resize_bicubic
from rls_lightning.image_io import load_rgb, save_png_atomic, to_uint8
from rls_lightning.metrics.fidelity import lr_consistency, psnr
from rls_lightning.stylegan.image_folder import list_images, load_images, split_names


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images rounded to 8 bits, as saved."""
    return (images.clamp(0, 1) * 255).round() / 255


METHOD_NAMES = {"bicubic": "bicubic upsampling", "rls": "RLS (the anchor)", "rls+": "RLS+"}


def paired_difference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Mean of a - b over faces and the half-width of its 95% confidence interval (1.96 sample SD / sqrt(n))."""
    diff = (a - b).double()
    half_width = 1.96 * float(diff.std()) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    return float(diff.mean()), half_width


def markdown_table(rows: list[dict]) -> str:
    """The model card's table: one row per factor and method."""
    lines = ["| factor | LR input | held-out faces | method | PSNR (dB) | minus bicubic (dB, 95% CI) "
             "| faces above bicubic | LR consistency |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        versus = (" | " if r["method"] == "bicubic" else
                  f"{r['psnr_minus_bicubic']:+.2f} ± {r['psnr_minus_bicubic_ci95']:.2f} | {r['above_bicubic']:.0%}")
        lines.append(f"| {r['factor']}x | {r['lr_size']}x{r['lr_size']} | {r['images']:,} "
                     f"| {METHOD_NAMES[r['method']]} | {r['psnr']:.2f} | {versus} | {r['lr_consistency']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the training zip or folder (faces64.zip)")
    parser.add_argument("--generator", type=Path, default=DEMO_GENERATOR)
    parser.add_argument("--flow", type=Path, default=DEMO_FLOW)
    parser.add_argument("--holdout", type=int, default=1000, help="as in training")
    parser.add_argument("--split-seed", type=int, default=0, help="as in training")
    parser.add_argument("--limit", type=int, default=None, help="only the first N held-out faces")
    parser.add_argument("--factors", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/demo-heldout"))
    parser.add_argument("--batch-size", type=int, default=16,
                        help="faces inverted together (16: the fastest per face on the 2-core build machine)")
    parser.add_argument("--steps", type=int, default=None, help="RLS steps (default: the preset's, paper: 200)")
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="RLS+ steps (default: the preset's, paper: 50)")
    parser.add_argument("--accelerator", default="auto")
    parser.add_argument("--precision", default="auto",
                        help="'auto' = bf16-mixed on a GPU or a CPU with native bf16, else 32-true")
    args = parser.parse_args(argv)
    precision = resolve_precision(args.precision, args.accelerator)

    _, held_out = split_names(list_images(args.data), args.holdout, args.split_seed)
    names = held_out[:args.limit] if args.limit else held_out
    stems = [Path(n).stem for n in names]
    hr_8bit = load_images(args.data, names, resolution=64)  # [N, 3, 64, 64] uint8
    hr = hr_8bit.float() / 255
    for stem, image in zip(stems, hr_8bit):  # only shown in overview.png
        if not (args.work_dir / "hr" / f"{stem}.png").exists():
            save_png_atomic(image.permute(1, 2, 0).numpy(), args.work_dir / "hr" / f"{stem}.png")
    step_options = [option for name, value in (("--steps", args.steps), ("--refine-steps", args.refine_steps))
                    if value is not None for option in (name, str(value))]
    rows, per_face = [], []
    for factor in args.factors:
        lr_dir, out_dir = args.work_dir / f"lr{factor}x", args.work_dir / f"rls+_{factor}x"
        lr = downsample_bicubic(hr * 2 - 1, factor)
        for stem, image in zip(stems, lr):
            if not (lr_dir / f"{stem}.png").exists():
                save_png_atomic(to_uint8(image), lr_dir / f"{stem}.png")
        code = invert.main(["--lr-dir", str(lr_dir), "--out-dir", str(out_dir), "--generator", str(args.generator),
                            "--flow", str(args.flow), "--batch-size", str(args.batch_size),
                            "--hr-dir", str(args.work_dir / "hr"),
                            "--accelerator", args.accelerator, "--precision", precision, *step_options])
        if code:
            return code
        lr_read = torch.stack([load_rgb(lr_dir / f"{s}.png") for s in stems])
        outputs = {"bicubic": quantize(resize_bicubic(lr_read, hr.shape[-1])),
                   "rls": torch.stack([load_rgb(out_dir / f"{s}_rls.png") for s in stems]),
                   "rls+": torch.stack([load_rgb(out_dir / f"{s}.png") for s in stems])}
        scores = {method: (psnr(images, hr), lr_consistency(images, lr_read)) for method, images in outputs.items()}
        for method, (psnr_values, consistency) in scores.items():
            difference, half_width = paired_difference(psnr_values, scores["bicubic"][0])
            rows.append({"factor": factor, "lr_size": lr_read.shape[-1], "method": method, "images": len(stems),
                         "psnr": float(psnr_values.mean()), "psnr_minus_bicubic": difference,
                         "psnr_minus_bicubic_ci95": half_width,
                         "above_bicubic": float((psnr_values > scores["bicubic"][0]).double().mean()),
                         "lr_consistency": float(consistency.mean())})
            per_face += [[stem, factor, method, f"{value:.4f}", f"{error:.6f}"]
                         for stem, value, error in zip(stems, psnr_values.tolist(), consistency.tolist())]
    with atomic_write_path(args.work_dir / "heldout_per_face.csv") as tmp, tmp.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["face", "factor", "method", "psnr", "lr_consistency"])
        writer.writerows(per_face)
    summary = {"generator": str(args.generator), "flow": str(args.flow), "data": str(args.data),
               "holdout": args.holdout, "split_seed": args.split_seed, "preset": "rls+", "precision": precision,
               "batch_size": args.batch_size, "steps": args.steps, "refine_steps": args.refine_steps, "results": rows}
    with atomic_write_path(args.work_dir / "heldout.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
