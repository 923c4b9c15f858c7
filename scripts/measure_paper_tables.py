"""The paper's Table 5 (RLS variants) and Table 2 (RLS+ variants), measured on held-out real faces (issue 29).

    python scripts/measure_paper_tables.py --data ../shared/data/faces64/faces64.zip --limit 200 --factors 4 8

For each held-out face of the demo training split (``--holdout 1000 --split-seed 0``, as the model card) and each
factor, the 8-bit bicubic LR input is restored in three passes, each resumable per batch and run for every face
before the next pass starts, so that an interrupted run has the default's numbers first:

1. ``default``: bicubic, RLS and RLS+ of the ``rls+`` preset (the anchor is kept for pass 3);
2. ``table5``: the RLS variants of Table 5, w/o Regu. (``no-prior``), w/o P_cross (``no-cross``) and w/o W+
   (``w-only``), search only (the default RLS of pass 1 is the table's last row);
3. ``table2``: the RLS+ variants of Table 2 from the same anchor, w/o noise, w/o g, w/o w, w/o l1-ball, and w/o
   anchor (RLS+ from the flow's mean w).

Per face and method: PSNR (RGB) and SSIM (Y) to the HR face on the 8-bit result as saved, LR consistency, the mean
distance between the anchor's W+ rows, the step kept, whether RLS+ ended at or below its anchor's objective, and the
two damage proxies of ``measure_rls_anchor.py`` (high-frequency energy and left-right asymmetry as ratios to the
ground truth's; "damaged" above ``--damage-ratio``; for RLS+ and its variants from the anchor, "marks added"
where either proxy exceeds both the ground truth's and ``--added-ratio`` times the anchor's). Writes
``<work-dir>/x<f>/<pass>/batch<k>.json``, ``per_face.csv`` and ``summary.json`` (means with 95% intervals; paired
differences against RLS, resp. RLS+) and prints a Markdown table.

``--work-dir benchmarks/paper-tables`` continues the runs whose per-face numbers the repository keeps there (the
``batch<k>.json`` of each pass; anchors and contact sheets, pictures of real faces, stay out of git): a batch whose
file is there for the same faces is read, not run again.
"""
from __future__ import annotations

import argparse
import copy
import itertools
import json
import time
from pathlib import Path

import torch
from measure_refinement_readings import (add_held_out_options, add_run_options, eight_bit, held_out_faces, mean_ci,
                                         resumable_batches, scores, write_rows)
from measure_rls_anchor import add_damage_options, anchor_log_density, contact_sheet, damage_measures, row_spread

from rls_lightning.atomic import atomic_write_path
from rls_lightning.degradations import downsample_bicubic, resize_bicubic
from rls_lightning.inversion.job import InversionJob, TrainerOptions
from rls_lightning.inversion.presets import get_preset
from rls_lightning.inversion.solver import SampleResult
from rls_lightning.lr_images import LowResImage
from rls_lightning.runtime import resolve_precision

PASSES = {
    "default": ["bicubic", "rls", "rls+"],
    "table5": ["no-prior", "no-cross", "w-only"],
    "table2": ["no-noise", "no-g", "no-w", "no-l1-ball", "no-anchor"],
}
BASELINE = {**{m: "rls" for m in PASSES["table5"]}, **{m: "rls+" for m in PASSES["table2"]}}


def rows_for(method: str, stems: list[str], factor: int, images: torch.Tensor, hr: torch.Tensor,
             results: list[SampleResult] | None, stage: str, flow=None) -> list[dict]:
    p, s = scores(images, hr)
    hf, asym = damage_measures(eight_bit(images))
    hf_true, asym_true = damage_measures(hr)
    rows = []
    for i, stem in enumerate(stems):
        row = {"face": stem, "factor": factor, "method": method, "psnr": p[i], "ssim": s[i],
               "hf_ratio": float(hf[i] / hf_true[i]), "asymmetry_ratio": float(asym[i] / asym_true[i])}
        if results is not None:
            r = results[i]
            row["row_spread"] = row_spread(r.ws_rls)
            row["log_density"] = anchor_log_density(flow, r.ws_rls if stage == "rls" else r.ws)
            if stage == "rls":
                row |= {"lr_l1": r.lr_l1_rls, "kept_step": r.rls_kept_step}
            else:
                row |= {"lr_l1": r.lr_l1, "kept_step": r.refine_kept_step,
                        "not_worse_than_anchor": r.lr_l1 <= r.lr_l1_rls + 1e-6}
        rows.append(row)
    return rows


def anchor_path(work_dir: Path, factor: int, k: int) -> Path:
    return work_dir / f"x{factor}" / "default" / f"anchors{k}.pt"


def run_pass(name: str, jobs: dict[str, InversionJob], stems: list[str], hr: torch.Tensor, factor: int,
             anchors_file: Path) -> tuple[list[dict], dict[str, torch.Tensor]]:
    flow = jobs["rls+"].flow
    lr_saved = eight_bit(downsample_bicubic(hr * 2 - 1, factor)) * 2 - 1  # the 8-bit PNG a user would have
    items = [(LowResImage(path=Path(f"{s}.png"), stem=s, pixels=lr_saved[i], factor=factor), 0)
             for i, s in enumerate(stems)]
    rows, pictures = [], {}
    if name == "default":
        bicubic = resize_bicubic(lr_saved, hr.shape[-1]).clamp(-1, 1)
        rows += rows_for("bicubic", stems, factor, bicubic, hr, None, "")
        anchors = jobs["rls+"].solver.run_search(items)
        torch.save([{"ws_rls": a.ws_rls, "noise_rls": a.noise_rls, "image_rls": a.image_rls,
                     "lr_l1_rls": a.lr_l1_rls, "rls_steps": a.rls_steps} for a in anchors], anchors_file)
        refined = [copy.copy(a) for a in anchors]
        jobs["rls+"].solver.run_refinement(items, refined)
        pictures["rls"] = torch.cat([a.image_rls for a in anchors])
        pictures["rls+"] = torch.cat([r.image for r in refined])
        rows += rows_for("rls", stems, factor, pictures["rls"], hr, anchors, "rls", flow)
        rows += rows_for("rls+", stems, factor, pictures["rls+"], hr, refined, "rls+", flow)
    elif name == "table5":
        for method in PASSES[name]:
            results = jobs[method].solver.run_search(items)
            pictures[method] = torch.cat([r.image_rls for r in results])
            rows += rows_for(method, stems, factor, pictures[method], hr, results, "rls", flow)
    else:
        saved = torch.load(anchors_file, weights_only=True)  # written by pass 1 of this script
        for method in PASSES[name]:
            job = jobs[method]
            if method == "no-anchor":
                results = job.solver.run_search(items)  # w/o anchor: no search, the flow's mean w
            else:
                results = [SampleResult(**a) for a in saved]
            job.solver.run_refinement(items, results)
            pictures[method] = torch.cat([r.image for r in results])
            rows += rows_for(method, stems, factor, pictures[method], hr, results, "rls+", flow)
    return rows, {k: eight_bit(v) for k, v in pictures.items()}


def marks_added(refined: dict, anchor: dict, added_ratio: float) -> bool:
    """Whether a refinement drew a mark its anchor lacked: a damage proxy (each a ratio to the ground truth's) above
    the ground truth's and above ``added_ratio`` times the anchor's. Either condition alone is not damage: true
    detail the anchor lacked (glasses, brows) raises the proxy over the anchor's, and an anchor's own mark is
    above the ground truth's before the refinement starts."""
    return any(refined[k] > 1 and refined[k] > added_ratio * anchor[k] for k in ("hf_ratio", "asymmetry_ratio"))


def summarise(rows: list[dict], damage_ratio: float, typical: float = float("-inf"),
              added_ratio: float = 1.3) -> list[dict]:
    """Per factor and method: means with 95% intervals, paired differences, and counts: damaged by the two image
    proxies, marks a refinement added to its anchor (``marks_added``), and latents off the prior (flow
    log-density P_w of the RLS anchor, resp. of the RLS+ w, below ``typical``, the 1st percentile of mapped w's:
    ``Solver.typical_p_w``)."""
    summary = []
    methods = [m for methods in PASSES.values() for m in methods]
    for factor in sorted({r["factor"] for r in rows}):
        by_method = {m: {r["face"]: r for r in rows if r["factor"] == factor and r["method"] == m} for m in methods}
        for method in methods:
            faces = by_method[method]
            if not faces:
                continue
            entry = {"factor": factor, "method": method, "faces": len(faces)}
            for key in ("psnr", "ssim", "lr_l1", "row_spread", "log_density", "hf_ratio", "asymmetry_ratio"):
                values = [r[key] for r in faces.values() if key in r]
                if values:
                    entry[key], entry[f"{key}_ci95"] = mean_ci(values)
            entry["damaged"] = sum(1 for r in faces.values() if max(r["hf_ratio"], r["asymmetry_ratio"]) > damage_ratio)
            anchors = by_method["rls"]
            if method in {"rls+", *PASSES["table2"]} - {"no-anchor"}:  # refinements of the RLS anchor
                entry["marks_added"] = sum(1 for f, r in faces.items()
                                           if f in anchors and marks_added(r, anchors[f], added_ratio))
            if "log_density" in entry:
                entry["off_prior"] = sum(1 for r in faces.values() if r["log_density"] < typical)
            if "not_worse_than_anchor" in next(iter(faces.values())):
                entry["worse_than_anchor"] = sum(1 for r in faces.values() if not r["not_worse_than_anchor"])
            pairs = {"rls": "bicubic", "rls+": "rls", **BASELINE}
            base = by_method.get(pairs.get(method, ""), {})
            common = sorted(set(faces) & set(base))
            if common:
                entry["versus"] = pairs[method]
                entry["psnr_minus_versus"] = mean_ci([faces[f]["psnr"] - base[f]["psnr"] for f in common])
                entry["ssim_minus_versus"] = mean_ci([faces[f]["ssim"] - base[f]["ssim"] for f in common])
            summary.append(entry)
    return summary


def markdown(summary: list[dict]) -> str:
    def pm(e: dict, key: str, digits: int) -> str:
        return f"{e[key]:.{digits}f} ± {e[key + '_ci95']:.{digits}f}" if key in e else ""

    lines = ["| factor | method | faces | PSNR (dB) | paired diff. (dB) | SSIM (Y) | LR error | W+ row spread "
             "| P_w of w | w off the prior | damaged | marks added | RLS+ worse than anchor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        diff = e.get("psnr_minus_versus")
        diff = f"{diff[0]:+.2f} ± {diff[1]:.2f} vs {e['versus']}" if diff else ""
        lines.append(f"| {e['factor']}x | {e['method']} | {e['faces']} | {pm(e, 'psnr', 2)} | {diff} | "
                     f"{pm(e, 'ssim', 4)} | {pm(e, 'lr_l1', 4)} | {pm(e, 'row_spread', 3)} | "
                     f"{pm(e, 'log_density', 0)} | {e.get('off_prior', '')} | {e['damaged']} | "
                     f"{e.get('marks_added', '')} | {e.get('worse_than_anchor', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_held_out_options(parser)
    parser.add_argument("--passes", nargs="+", default=list(PASSES), choices=list(PASSES))
    add_run_options(parser, "runs/paper-tables", 16)
    add_damage_options(parser)
    parser.add_argument("--added-ratio", type=float, default=1.3,
                        help="RLS+ added a mark where either damage proxy is above the ground truth's and above this "
                             "multiple of its anchor's")
    args = parser.parse_args(argv)
    precision = resolve_precision(args.precision, "cpu")
    generator, flow, names, hr_all = held_out_faces(args)
    presets = {"rls+": "rls+", **{m: m for m in PASSES["table5"] + PASSES["table2"]}}
    jobs = {m: InversionJob(generator, flow, get_preset(p), args.work_dir, batch_size=args.batch_size,
                            trainer=TrainerOptions(precision=precision), log=lambda message: None)
            for m, p in presets.items()}
    rows = []
    for name, factor in itertools.product(args.passes, args.factors):
        folder, start_time = args.work_dir / f"x{factor}" / name, time.perf_counter()

        def run(k: int, start: int, stems: list[str]) -> list[dict] | None:
            anchors = anchor_path(args.work_dir, factor, k)
            if name == "table2" and not anchors.is_file():
                return None  # pass 1 has not reached this batch
            hr = hr_all[start:start + args.batch_size]
            batch_rows, pictures = run_pass(name, jobs, stems, hr, factor, anchors)
            if args.sheets:
                for method, images in pictures.items():
                    contact_sheet(hr, {method: images}, folder / f"{method}{k}.png")
            print(f"x{factor} {name} batch {k}: {time.perf_counter() - start_time:.0f} s", flush=True)
            return batch_rows

        rows += resumable_batches(folder, names, args.batch_size, run)
    write_rows(args.work_dir / "per_face.csv", rows)
    typical = jobs["rls+"].solver.typical_p_w()  # the threshold of results.csv's off-prior note
    summary = summarise(rows, args.damage_ratio, typical, args.added_ratio)
    with atomic_write_path(args.work_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps({"precision": precision, "generator": str(args.generator), "faces": len(names),
                                   "typical_log_density_p1": typical, "settings": get_preset("rls+").description,
                                   "results": summary}, indent=2))
    print(markdown(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
