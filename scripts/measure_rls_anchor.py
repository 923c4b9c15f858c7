"""The RLS anchor under readings of P_cross and the schedule, and RLS+ from each, on held-out real faces (issue 29).

    python scripts/measure_rls_anchor.py --data ../shared/data/faces64/faces64.zip --limit 200 --factors 4 8

For each held-out face of the demo training split (``--holdout 1000 --split-seed 0``, as the model card) and each
factor, the 8-bit bicubic LR input is inverted with every ``--variants`` RLS setting (overrides of the default
``rls+`` preset, below: readings of P_cross and of Eq. 6's likelihood, the schedule, Table 5's ablations), then
refined from that anchor with the default RLS+ (for ``REFINE_VARIANTS``, with an RLS+ override too). Per face and
variant: PSNR (RGB) and SSIM (Y) to the HR face of RLS and of RLS+, both on the 8-bit result as saved; LR
consistency; the mean Euclidean distance between the W+ rows of the anchor (0: "w/o W+" in effect); the step each stage kept; and two proxies of a
damaged face that PSNR does not see: high-frequency energy (result minus its Gaussian blur, sigma 1 px) and
left-right asymmetry (mean |x - mirror(x)|), each as a ratio to the same measure of the ground truth. A face counts
as damaged when either ratio exceeds ``--damage-ratio`` (default 2). ``--sheets`` writes a contact sheet per
variant (HR | RLS | RLS+ per face) to look at.

Writes ``<work-dir>/x<f>/<variant>/batch<k>.json`` (a rerun continues), ``per_face.csv`` and ``summary.json``
(means with 95% intervals, paired differences against the default), and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from measure_refinement_readings import (add_held_out_options, add_run_options, eight_bit, held_out_faces, mean_ci,
                                         resumable_batches, scores, write_rows)
from PIL import Image

from rls_lightning.atomic import atomic_write_path
from rls_lightning.runtime import resolve_precision
from rls_lightning.degradations import downsample_bicubic, gaussian_blur
from rls_lightning.inversion.job import InversionJob, TrainerOptions
from rls_lightning.inversion.objective import flow_log_density
from rls_lightning.inversion.presets import get_preset
from rls_lightning.lr_images import LowResImage

# Overrides of the default RLS (search settings), each spelled out in full so that it keeps its meaning when the
# default changes; RLS+ is the default one. The default (session 13): the official reading of Eq. 5-6, the mean
# likelihood and the mean row distance.
EQ5 = {"cross": "squared-sum"}
L1_SUM = {"likelihood_reduction": "sum", **EQ5}  # session 12's default (rls+l1-sum)
VARIANTS = {
    "default": {},
    "constant": {"schedule": "constant", "keep_best": False},  # the RLS schedule before issue 29
    "no-cross": {"lambda_c": 0.0},  # Table 5 "w/o P_cross"
    "w-only": {"space": "w"},  # Table 5 "w/o W+"
    "no-prior": {"lambda_w": 0.0, "lambda_g": 0.0, "lambda_c": 0.0},  # Table 5 "w/o Regu."
    "eq5-cross": EQ5,  # the mean with Eq. 5's squared sum (the default before session 12, rls+eq5-cross)
    "mean-squared": {"cross": "mean-squared"},  # Eq. 5's squared distances averaged over the pairs
    "sum": L1_SUM,
    "sum-official-cross": {"likelihood_reduction": "sum", "cross": "mean-distance"},
    "sum-w-only": {**L1_SUM, "space": "w"},
    "sum-no-cross": {**L1_SUM, "lambda_c": 0.0},
    "laplace-10": {**L1_SUM, "likelihood_weight": 0.1},  # the l1 sum over a Laplace scale lambda_l = 10 (sec. 3.1)
    "laplace-30": {**L1_SUM, "likelihood_weight": 1 / 30},
    "laplace-100": {**L1_SUM, "likelihood_weight": 0.01},
}
# Overrides of the default RLS and RLS+ for some variants.
REFINE_VARIANTS = {
    "nine-noise-maps": ({}, {"trainable_noise": 9}),  # "the first nine", all maps of a 64 px generator
    "no-noise": ({}, {"optimize_noise": False}),
    "no-generator": ({}, {"optimize_generator": False}),
    "sum-no-early-stop": (L1_SUM, {"early_stopping_patience": None}),
    "no-early-stop": ({}, {"early_stopping_patience": None}),
}


def row_spread(ws: torch.Tensor) -> float:
    """Mean Euclidean distance between the W+ rows of one code ``[1, rows, d]``."""
    rows = ws.shape[1]
    if rows < 2:
        return 0.0
    pairs = list(itertools.combinations(range(rows), 2))
    return float(torch.stack([(ws[0, i] - ws[0, j]).norm() for i, j in pairs]).mean())


def damage_measures(images01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image ``[N]``: high-frequency energy and left-right asymmetry of the luminance, on [0, 1]."""
    luma = (0.299 * images01[:, 0] + 0.587 * images01[:, 1] + 0.114 * images01[:, 2])[:, None]
    high = luma - gaussian_blur(luma, 1.0)
    return high.square().flatten(1).mean(1), (luma - luma.flip(-1)).abs().flatten(1).mean(1)


def anchor_log_density(flow, ws: torch.Tensor) -> float:
    """P_w of Eq. 5 at an anchor ``[1, rows, d]``: the flow's log-density averaged over its rows (mapped w of the
    demo model: 136 on average, 1% below 32)."""
    with torch.no_grad():
        return float(flow_log_density(flow.flow, ws.float()))


def run_batch(job: InversionJob, variant: str, stems: list[str], hr: torch.Tensor, factor: int
              ) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """The rows of one batch, and its results (``rls``, ``rls+``) as saved, on [0, 1]."""
    lr_saved = eight_bit(downsample_bicubic(hr * 2 - 1, factor)) * 2 - 1
    items = [(LowResImage(path=Path(f"{s}.png"), stem=s, pixels=lr_saved[i], factor=factor), 0)
             for i, s in enumerate(stems)]
    results = job.solver.run_search(items)  # the job's own settings: its initial latents have the variant's rows
    job.solver.run_refinement(items, results)
    hf_true, asym_true = damage_measures(hr)
    rows, saved = [], {}
    for stage, images, lr_l1, kept in (
            ("rls", torch.cat([r.image_rls for r in results]), [r.lr_l1_rls for r in results],
             [r.rls_kept_step for r in results]),
            ("rls+", torch.cat([r.image for r in results]), [r.lr_l1 for r in results],
             [r.refine_kept_step for r in results])):
        p, s = scores(images, hr)
        saved[stage] = eight_bit(images)
        hf, asym = damage_measures(saved[stage])
        rows += [{"face": stem, "factor": factor, "variant": variant, "stage": stage, "psnr": p[i], "ssim": s[i],
                  "lr_l1": lr_l1[i], "kept_step": kept[i], "row_spread": row_spread(results[i].ws_rls),
                  "log_density": anchor_log_density(job.flow, results[i].ws_rls),
                  "hf_ratio": float(hf[i] / hf_true[i]), "asymmetry_ratio": float(asym[i] / asym_true[i]),
                  "rls_plus_not_worse": results[i].lr_l1 <= results[i].lr_l1_rls + 1e-6}
                 for i, stem in enumerate(stems)]
    return rows, saved


def contact_sheet(hr: torch.Tensor, images: dict[str, torch.Tensor], path: Path) -> None:
    """One row per face: HR, then each of ``images`` (here RLS | RLS+)."""
    tiles = [torch.cat([hr[i], *(column[i] for column in images.values())], dim=2) for i in range(hr.shape[0])]
    sheet = torch.cat(tiles, dim=1)
    Image.fromarray((sheet.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def summarise(rows: list[dict], variants: list[str], damage_ratio: float) -> list[dict]:
    summary = []
    for factor, stage in itertools.product(sorted({r["factor"] for r in rows}), ("rls", "rls+")):
        chosen = [r for r in rows if r["factor"] == factor and r["stage"] == stage]
        by_variant = {v: sorted((r for r in chosen if r["variant"] == v), key=lambda r: r["face"]) for v in variants}
        for variant, faces in by_variant.items():
            if not faces:
                continue
            entry = {"factor": factor, "stage": stage, "variant": variant, "faces": len(faces)}
            for key in ("psnr", "ssim", "lr_l1", "row_spread", "log_density", "hf_ratio", "asymmetry_ratio"):
                if all(key in r for r in faces):
                    entry[key], entry[f"{key}_ci95"] = mean_ci([r[key] for r in faces])
            entry["damaged"] = sum(1 for r in faces if max(r["hf_ratio"], r["asymmetry_ratio"]) > damage_ratio)
            entry["rls_plus_worse_than_anchor"] = sum(1 for r in faces if not r["rls_plus_not_worse"])
            base = by_variant.get("default", [])
            if variant != "default" and len(base) == len(faces):
                entry["psnr_minus_default"] = mean_ci([a["psnr"] - b["psnr"] for a, b in zip(faces, base)])
            summary.append(entry)
    return summary


def markdown(summary: list[dict]) -> str:
    lines = ["| factor | stage | variant | faces | PSNR (dB) | vs default (dB) | SSIM (Y) | LR error | W+ row spread "
             "| anchor P_w | HF ratio | asymmetry ratio | damaged | RLS+ worse than anchor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        diff = e.get("psnr_minus_default")
        diff = f"{diff[0]:+.2f} ± {diff[1]:.2f}" if diff else ""
        lines.append(f"| {e['factor']}x | {e['stage']} | {e['variant']} | {e['faces']} | {e['psnr']:.2f} ± "
                     f"{e['psnr_ci95']:.2f} | {diff} | {e['ssim']:.4f} | {e['lr_l1']:.4f} | {e['row_spread']:.3f} | "
                     f"{e.get('log_density', float('nan')):.0f} | {e['hf_ratio']:.2f} | {e['asymmetry_ratio']:.2f} | "
                     f"{e['damaged']} | {e['rls_plus_worse_than_anchor']} |")
    return "\n".join(lines)


def add_damage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--damage-ratio", type=float, default=2.0,
                        help="a face counts as damaged above this ratio of either proxy to its ground truth's")
    parser.add_argument("--sheets", action="store_true", help="write contact sheets (HR | results) per batch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_held_out_options(parser)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=[*VARIANTS, *REFINE_VARIANTS])
    add_run_options(parser, "runs/rls-anchor", 8)
    add_damage_options(parser)
    args = parser.parse_args(argv)
    precision = resolve_precision(args.precision, "cpu")
    generator, flow, names, hr_all = held_out_faces(args)
    rows = []
    for factor, variant in itertools.product(args.factors, args.variants):
        search, refine = REFINE_VARIANTS.get(variant, (VARIANTS.get(variant), None))
        job = InversionJob(generator, flow, get_preset("rls+").replace(search=search, refine=refine), args.work_dir,
                           batch_size=args.batch_size, trainer=TrainerOptions(precision=precision),
                           log=lambda message: None)
        folder, start_time = args.work_dir / f"x{factor}" / variant, time.perf_counter()

        def run(k: int, start: int, stems: list[str]) -> list[dict]:
            hr = hr_all[start:start + args.batch_size]
            batch_rows, saved = run_batch(job, variant, stems, hr, factor)
            if args.sheets:
                contact_sheet(hr, saved, folder / f"batch{k}.png")
            return batch_rows

        rows += resumable_batches(folder, names, args.batch_size, run)
        print(f"x{factor} {variant}: {time.perf_counter() - start_time:.0f} s", flush=True)
    write_rows(args.work_dir / "per_face.csv", rows)
    summary = summarise(rows, args.variants, args.damage_ratio)
    with atomic_write_path(args.work_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"precision": precision, "generator": str(args.generator), "faces": len(names),
                                   "variants": {v: REFINE_VARIANTS.get(v, VARIANTS.get(v)) for v in args.variants},
                                   "results": summary},
                                  indent=2))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
