"""Evaluate super-resolved images against the ground truth with the paper's metrics (section 4, Tables 1-5).

    python -m rls_lightning.evaluate --sr-dir celeba_lr16_rls+ --hr-dir celeba_hr --lr-dir celeba_lr16 \
        --weights-dir ~/weights

Pairs files by name stem (``--sr-suffix _rls`` evaluates the RLS anchors ``<stem>_rls.png`` instead). Per image:
PSNR, MS-SSIM (SSIM when the images are too small for MS-SSIM, said so), LPIPS (AlexNet), identity similarity
(cosine of FaceNet embeddings; the paper used CurricularFace), NIQE, and LR consistency when --lr-dir is given.
Per set: FID and KID (Inception-v3 features). Networks come from --weights-dir or the torch cache; a missing one
skips its metric with a line saying which file to put where. Writes a table on screen, metrics.json (means, set
metrics, notes) and metrics.csv (one row per image) into --out-dir (default: the SR folder).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write_path
from .image_io import load_rgb, to_uint8
from .lr_images import images_by_stem
from .metrics.fidelity import lr_consistency, psnr, structural_similarity
from .metrics.weights import NIQE_PARAMS, MissingWeights, find_weights

PER_IMAGE_ORDER = ["PSNR", "MS-SSIM", "SSIM", "LPIPS", "ID", "NIQE", "LR-L1"]


def pair_by_stem(sr_dir: Path, hr_dir: Path, sr_suffix: str = "") -> tuple[list[tuple[str, Path, Path]], dict]:
    """``(stem, sr, hr)`` for every stem in both folders, and the names found in only one of them."""
    sr, hr = images_by_stem(sr_dir, sr_suffix), images_by_stem(hr_dir)
    pairs = [(stem, sr[stem], hr[stem]) for stem in sorted(sr.keys() & hr.keys())]
    return pairs, {"sr_only": sorted(sr.keys() - hr.keys()), "hr_only": sorted(hr.keys() - sr.keys())}


class Evaluator:
    """Loads what it can of the feature networks, then scores batches of (SR, HR[, LR]) images."""

    def __init__(self, weights_dir: str | Path | None, device: str | torch.device = "cpu") -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        from .metrics.feature_networks import load_face_identity, load_inception, load_lpips

        self.device = torch.device(device)
        self.notes: list[str] = []
        self.inception = self.lpips = self.identity = self.niqe = None
        self.fid = self.kid = None
        try:
            self.inception = load_inception(weights_dir).to(self.device)
            self.fid = FrechetInceptionDistance(feature=self.inception, reset_real_features=True).to(self.device)
            # KID keeps features, not images; its subset size is lowered at the end when there are fewer images
            self.kid = KernelInceptionDistance(feature=self.inception, subsets=100, subset_size=1000).to(self.device)
        except MissingWeights as err:
            self.notes.append(str(err))
        try:
            self.lpips = load_lpips(weights_dir).to(self.device)
        except MissingWeights as err:
            self.notes.append(str(err))
        try:
            self.identity = load_face_identity(weights_dir).to(self.device)
        except MissingWeights as err:
            self.notes.append(str(err))
        try:
            niqe_path = find_weights(NIQE_PARAMS, weights_dir)
            from .metrics.niqe import NIQE

            self.niqe = NIQE.from_file(niqe_path)
        except MissingWeights as err:
            self.notes.append(str(err))
        self.ssim_name: str | None = None
        self.set_size = 0

    @torch.no_grad()
    def score_batch(self, sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor | None) -> dict[str, torch.Tensor]:
        sr, hr = sr.to(self.device), hr.to(self.device)
        scores = {"PSNR": psnr(sr, hr)}
        name, values = structural_similarity(sr, hr)
        if self.ssim_name is None and name == "SSIM":
            self.notes.append(f"images of {sr.shape[-1]} px are too small for MS-SSIM (it needs more than 160 px): "
                              "SSIM reported instead")
        self.ssim_name = name
        scores[name] = values
        if self.lpips is not None:
            scores["LPIPS"] = self.lpips(sr * 2 - 1, hr * 2 - 1).flatten()
        if self.identity is not None:
            scores["ID"] = (self.identity(sr) * self.identity(hr)).sum(dim=1)
        if self.niqe is not None:
            try:
                niqe = [self.niqe.score(to_uint8(img * 2 - 1)) for img in sr]  # to_uint8 takes [-1, 1]
                scores["NIQE"] = torch.tensor(niqe, dtype=torch.float64)
            except ValueError as err:
                self.notes.append(f"NIQE skipped: {err}")
                self.niqe = None
        if lr is not None:
            scores["LR-L1"] = lr_consistency(sr, lr.to(self.device))
        if self.fid is not None:
            real, fake = (hr * 255).round().to(torch.uint8), (sr * 255).round().to(torch.uint8)
            for metric in (self.fid, self.kid):
                metric.update(real, real=True)
                metric.update(fake, real=False)
            self.set_size += len(real)
        return scores

    @torch.no_grad()
    def set_metrics(self) -> dict[str, float]:
        if self.fid is None:
            return {}
        if self.set_size < 2:
            self.notes.append("FID/KID skipped: they need at least 2 image pairs")
            return {}
        results = {"FID": float(self.fid.compute())}
        self.kid.subset_size = min(1000, self.set_size)
        kid_mean, _ = self.kid.compute()
        results["KID"] = float(kid_mean)
        if self.set_size < 2000:
            self.notes.append(f"FID from {self.set_size} images is biased upwards (the paper used 2000)")
        return results


def evaluate(sr_dir: Path, hr_dir: Path, lr_dir: Path | None = None, weights_dir: Path | None = None,
             device: str = "cpu", batch_size: int = 16, sr_suffix: str = "", progress: bool = True) -> dict:
    """Score every pair; returns ``{"summary", "set_metrics", "per_image", "notes", "unpaired"}``."""
    from rich.progress import track

    pairs, unpaired = pair_by_stem(sr_dir, hr_dir, sr_suffix)
    evaluator = Evaluator(weights_dir, device)
    lr_paths = images_by_stem(lr_dir) if lr_dir is not None else {}
    rows: list[dict] = []
    batches = [pairs[i:i + batch_size] for i in range(0, len(pairs), batch_size)]
    for batch in (track(batches, description="evaluating", transient=True) if progress else batches):
        usable = []
        for stem, sr_path, hr_path in batch:
            sr, hr = load_rgb(sr_path), load_rgb(hr_path)
            if sr.shape != hr.shape:
                evaluator.notes.append(f"{sr_path.name}: skipped, size {tuple(sr.shape[1:])} differs from "
                                       f"{hr_path.name}'s {tuple(hr.shape[1:])}")
                continue
            lr = load_rgb(lr_paths[stem]) if stem in lr_paths else None
            usable.append((stem, sr, hr, lr))
        if not usable:
            continue
        sr = torch.stack([u[1] for u in usable])
        hr = torch.stack([u[2] for u in usable])
        lr = torch.stack([u[3] for u in usable]) if lr_dir is not None and all(u[3] is not None for u in usable) \
            else None
        scores = evaluator.score_batch(sr, hr, lr)
        for i, (stem, *_rest) in enumerate(usable):
            rows.append({"stem": stem, **{k: float(v[i]) for k, v in scores.items()}})
    summary = {}
    for key in PER_IMAGE_ORDER:
        values = np.array([row[key] for row in rows if key in row], dtype=np.float64)
        if len(values):
            undefined = int(np.isnan(values).sum())
            if undefined:  # e.g. NIQE of a flat image
                evaluator.notes.append(f"{key} undefined for {undefined} image(s), left out of its mean")
            summary[key] = float(np.nanmean(values)) if undefined < len(values) else float("nan")
    set_metrics = evaluator.set_metrics()
    return {"pairs": len(rows), "summary": summary, "set_metrics": set_metrics, "per_image": rows,
            "notes": evaluator.notes, "unpaired": unpaired}


def write_results(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "metrics.json", out_dir / "metrics.csv"
    with atomic_write_path(json_path) as tmp:
        tmp.write_text(json.dumps({k: v for k, v in result.items() if k != "per_image"}, indent=2))
    columns = ["stem"] + [k for k in PER_IMAGE_ORDER if any(k in row for row in result["per_image"])]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result["per_image"])
    with atomic_write_path(csv_path) as tmp:
        tmp.write_text(buffer.getvalue())
    return json_path, csv_path


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(prog="python -m rls_lightning.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sr-dir", type=Path, required=True, help="super-resolved images")
    parser.add_argument("--hr-dir", type=Path, required=True, help="ground-truth high-resolution images")
    parser.add_argument("--lr-dir", type=Path, default=None, help="the LR inputs, for LR consistency")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="folder with the feature networks' weight files (default: the torch cache only)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where metrics.json/csv go (default: --sr-dir)")
    parser.add_argument("--sr-suffix", default="", help="evaluate <stem><suffix>.png, e.g. _rls for the anchors")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    console = Console(soft_wrap=True)
    for folder in (args.sr_dir, args.hr_dir, args.lr_dir):
        if folder is not None and not folder.is_dir():
            console.print(f"error: {folder}: not a folder")
            return 2
    result = evaluate(args.sr_dir, args.hr_dir, args.lr_dir, args.weights_dir, args.device, args.batch_size,
                      args.sr_suffix)
    for note in result["notes"]:
        console.print(f"[yellow]{note}[/yellow]")
    for side, names in result["unpaired"].items():
        if names:
            console.print(f"{len(names)} file(s) {side.replace('_', ' ')}: {', '.join(names[:5])}"
                          f"{', ...' if len(names) > 5 else ''}")
    table = Table(title=f"{args.sr_dir} vs {args.hr_dir} ({result['pairs']} pairs)")
    values = {**result["set_metrics"], **result["summary"]}
    for key in values:
        table.add_column(key + (" (x1e3)" if key == "KID" else ""), justify="right")
    table.add_row(*[f"{v * (1e3 if k == 'KID' else 1):.4f}" if math.isfinite(v) else "nan"
                    for k, v in values.items()])
    console.print(table)
    json_path, csv_path = write_results(result, args.out_dir or args.sr_dir)
    console.print(f"wrote {json_path} and {csv_path}")
    return 0 if result["pairs"] else 1


if __name__ == "__main__":
    sys.exit(main())
