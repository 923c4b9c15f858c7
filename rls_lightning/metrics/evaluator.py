"""Scoring super-resolved images against the ground truth with the paper's metrics (section 4, Tables 1-5).

``evaluate(sr_dir, hr_dir, lr_dir, ...)`` pairs the files of two folders by name stem, scores each pair with the
per-image metrics of ``metrics.registry`` (PSNR, SSIM, MS-SSIM, LPIPS, ID, NIQE) and LR consistency (``LR-L1``)
when LR inputs are given, and the set with FID and KID; ``write_results`` writes metrics.json and metrics.csv.
The command around it is ``rls_lightning.cli.evaluate``, whose help states the protocol in full.

Failures are plain exceptions for the caller to word: ``ValueError`` for unusable settings (channels, a NIQE
model file), ``OSError`` from the file system. An image that cannot be used is not an exception: its pair is
skipped with a note in the result, and the others are scored.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..atomic import atomic_write_path
from ..lr_images import AMBIGUOUS, listed, match_stems
from ..names import csv_text
from ..no_grad import no_grad
from ..weights import VerificationFailed, WeightsUnavailable
from .registry import NIQE_MIN_SIZE, get_metric, metric_names

if TYPE_CHECKING:  # torch, the metrics and the decoder are imported when work starts: --help needs none of them
    import torch

CHANNELS = ("rgb", "y", "gray")  # metrics.fidelity.CHANNELS, named here so that --help needs no torch
# the registered per-image metrics in the order they run, then LR consistency (scored only with an LR image)
PER_IMAGE_ORDER = [*metric_names(), "LR-L1"]
DEFAULT_CHANNELS = "y"  # the paper and the official code are silent; the SR literature reports luma
CHANNEL_PROTOCOL = {
    "y": "the Y channel of BT.601 YCbCr as MATLAB rgb2ycbcr (16..235, not rounded), data range 255",
    "rgb": "the three RGB channels in [0, 1], data range 1 (SSIM maps averaged over the channels)",
    "gray": "MATLAB rgb2gray of the 8-bit image (rounded to integers), data range 255",
}


def pair_by_stem(sr_dir: Path, hr_dir: Path, sr_suffix: str = "") -> tuple[list[tuple[str, Path, Path]], dict,
                                                                               dict[str, str]]:
    """``(stem, sr, hr)`` for every stem in both folders, the names found in only one of them, and ``{stem: line}``
    for each stem in both that a folder holds more than one file of (``a.png`` and ``a.jpg``): that pair is
    skipped, since which file was meant is unknown."""
    (sr, sr_ambiguous), (hr, hr_ambiguous) = match_stems(sr_dir, sr_suffix), match_stems(hr_dir)
    sr_stems, hr_stems = sr.keys() | sr_ambiguous.keys(), hr.keys() | hr_ambiguous.keys()
    common = sorted(sr_stems & hr_stems)
    pairs = [(stem, sr[stem], hr[stem]) for stem in common if stem in sr and stem in hr]
    ambiguous = {stem: f"{listed(sr_ambiguous.get(stem, []) + hr_ambiguous.get(stem, []))}: {AMBIGUOUS}; pair "
                       f"{stem} skipped" for stem in common if stem in sr_ambiguous or stem in hr_ambiguous}
    return pairs, {"sr_only": sorted(sr_stems - hr_stems), "hr_only": sorted(hr_stems - sr_stems)}, ambiguous


class Evaluator:
    """Loads what it can of the feature networks, then scores batches of (SR, HR[, LR]) images.

    ``metrics``: the names of the per-image metrics to run (``metrics.registry``; default: every registered one,
    in its order); an unknown name raises ``registry.UnknownMetric`` (a ``ValueError``) before anything loads."""

    def __init__(self, weights_dir: str | Path | None, device: str | torch.device = "cpu",
                 channels: str = DEFAULT_CHANNELS, niqe_params: str | Path | None = None,
                 metrics: Sequence[str] | None = None) -> None:
        import torch
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        from .feature_networks import FID_PROTOCOL, load_face_identity, load_inception, load_lpips
        from .fidelity import CHANNELS
        from .niqe import DEFAULT_PARAMS_PATH, NIQE

        if channels not in CHANNELS:
            raise ValueError(f"channels must be one of {', '.join(CHANNELS)}, got {channels!r}")
        self.metrics = {name: get_metric(name) for name in (metric_names() if metrics is None else metrics)}
        self.device = torch.device(device)
        self.channels = channels
        self.notes: list[str] = []
        self.inception = self.lpips = self.identity = self.niqe = None
        self.fid = self.kid = None
        unavailable = (WeightsUnavailable, VerificationFailed)
        try:
            self.inception = load_inception(weights_dir).to(self.device)
            self.fid = FrechetInceptionDistance(feature=self.inception, reset_real_features=True).to(self.device)
            # KID keeps features, not images; its subset size is lowered at the end when there are fewer images
            self.kid = KernelInceptionDistance(feature=self.inception, subsets=100, subset_size=1000).to(self.device)
        except unavailable as err:
            self.notes.append(f"FID/KID skipped: {err}")
        try:
            self.lpips = load_lpips(weights_dir).to(self.device)
        except unavailable as err:
            self.notes.append(f"LPIPS skipped: {err}")
        try:
            self.identity = load_face_identity(weights_dir).to(self.device)
        except unavailable as err:
            self.notes.append(f"ID skipped: {err}")
        self.niqe = NIQE.from_file(niqe_params) if niqe_params is not None else NIQE.default()
        self.protocol = {
            "FID/KID": FID_PROTOCOL,
            "PSNR/SSIM/MS-SSIM": f"{channels}: {CHANNEL_PROTOCOL[channels]}; SSIM and MS-SSIM as Wang's MATLAB "
                                 "ssim.m / msssim.m (11x11 Gaussian window, std 1.5, no automatic downsampling); "
                                 "MS-SSIM only for images over 160 px",
            "LPIPS": "lpips 0.1.4, version 0.1, AlexNet backbone (torchvision weights), inputs in [-1, 1]",
            "ID": "cosine similarity of facenet-pytorch InceptionResnetV1 (VGGFace2) embeddings at 160 px",
            "NIQE": f"Mittal et al. 2013, 96 px patches, images of at least {NIQE_MIN_SIZE} px, pristine model "
                    + (str(niqe_params) if niqe_params is not None else
                       f"{DEFAULT_PARAMS_PATH.name} (the authors' modelparameters.mat, via BasicSR)"),
        }
        self.set_size = 0
        self._noted_sizes: set[str] = set()

    def left_out(self, metric: str, side: int, needs: str) -> None:
        """One note per metric that images of ``side`` px are too small for."""
        if metric not in self._noted_sizes:
            self._noted_sizes.add(metric)
            self.notes.append(f"{metric} left out for images of {side} px (it needs {needs})")

    @no_grad
    def score_batch(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image metrics of same-sized ``[N, 3, H, W]`` batches in [0, 1]; feeds the set metrics too."""
        import torch

        sr, hr = sr.to(self.device), hr.to(self.device)
        scores = {}
        for name, metric in self.metrics.items():  # each says itself when it does not apply (None)
            score = metric(self, sr, hr)
            if score is not None:
                scores[name] = score
        if self.fid is not None:
            real, fake = (hr * 255).round().to(torch.uint8), (sr * 255).round().to(torch.uint8)
            for metric in (self.fid, self.kid):
                metric.update(real, real=True)
                metric.update(fake, real=False)
            self.set_size += len(real)
        return scores

    @no_grad
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


class _Conversions:
    """Per-file conversion notes, grouped by what was done so that a thousand 16-bit files make one line."""

    def __init__(self) -> None:
        self.files: dict[str, list[str]] = defaultdict(list)

    def add(self, path: Path, notes: list[str]) -> None:
        for note in notes:
            self.files[note].append(str(path))

    def lines(self) -> list[str]:
        return [f"{note}: {', '.join(paths[:3])}" + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
                for note, paths in self.files.items()]


def _read_lr(lr_path: Path, sr: torch.Tensor, notes: list[str], conversions: _Conversions) -> torch.Tensor | None:
    """The LR input of a pair when it can be compared with the SR image, else None with a note."""
    from ..image_io import ImageReadError, read_image

    try:
        decoded = read_image(lr_path)
    except ImageReadError as err:
        notes.append(f"{lr_path}: LR consistency skipped, {err.reason}")
        return None
    lr = decoded.chw()
    (h, w), (lh, lw) = sr.shape[1:], lr.shape[1:]
    if h % lh or w % lw or h // lh != w // lw:
        notes.append(f"{lr_path}: LR consistency skipped, size {lw}x{lh} is not the SR's {w}x{h} divided by an "
                     "integer factor")
        return None
    conversions.add(lr_path, decoded.notes)
    return lr


def _read_pair(sr_path: Path, hr_path: Path, notes: list[str],
               conversions: _Conversions) -> tuple[torch.Tensor, torch.Tensor] | None:
    """SR and HR as ``[3, H, W]`` in [0, 1], or None (noted) when either is unusable or the sizes differ."""
    from ..image_io import ImageReadError, read_image
    from .fidelity import SSIM_KERNEL

    decoded = {}
    for path in (sr_path, hr_path):
        try:
            decoded[path] = read_image(path)
        except ImageReadError as err:
            notes.append(f"{path}: skipped, {err.reason}")
            return None
    sr, hr = decoded[sr_path].chw(), decoded[hr_path].chw()
    if sr.shape != hr.shape:
        notes.append(f"{sr_path}: skipped, size {sr.shape[2]}x{sr.shape[1]} differs from {hr_path.name}'s "
                     f"{hr.shape[2]}x{hr.shape[1]}")
        return None
    if min(sr.shape[1:]) < SSIM_KERNEL:
        notes.append(f"{sr_path}: skipped, size {sr.shape[2]}x{sr.shape[1]} is smaller than SSIM's "
                     f"{SSIM_KERNEL}x{SSIM_KERNEL} window")
        return None
    conversions.add(sr_path, decoded[sr_path].notes)
    conversions.add(hr_path, decoded[hr_path].notes)
    return sr, hr


def summarise(rows: list[dict]) -> tuple[dict[str, float], list[str]]:
    """The mean of each per-image metric over its finite values, and a note for each metric that had others."""
    summary, notes = {}, []
    for key in PER_IMAGE_ORDER:
        values = np.array([row[key] for row in rows if key in row], dtype=np.float64)
        if not len(values):
            continue
        finite = values[np.isfinite(values)]
        infinite, undefined = int(np.isinf(values).sum()), int(np.isnan(values).sum())
        if infinite:
            why = " (SR identical to HR)" if key == "PSNR" else ""
            notes.append(f"{key} is infinite for {infinite} of {len(values)} image(s){why}, left out of its mean")
        if undefined:  # e.g. NIQE of a flat image
            notes.append(f"{key} undefined (nan) for {undefined} of {len(values)} image(s), left out of its mean")
        if len(finite):
            summary[key] = float(finite.mean())
        else:
            summary[key] = float("inf") if infinite == len(values) else float("nan")
            notes.append(f"{key}: no finite value to average, mean reported as {summary[key]}")
    return summary, notes


def evaluate(sr_dir: Path, hr_dir: Path, lr_dir: Path | None = None, weights_dir: Path | None = None,
             device: str = "cpu", batch_size: int = 16, sr_suffix: str = "", progress: bool = True,
             channels: str = DEFAULT_CHANNELS, niqe_params: Path | None = None,
             metrics: Sequence[str] | None = None) -> dict:
    """Score every pair; returns ``{"pairs", "skipped", "summary", "set_metrics", "protocol", "per_image",
    "notes", "unpaired"}`` (``pairs``: the number scored; non-finite values stay floats here, see ``json_safe``).
    ``metrics``: the per-image metrics to run, by registry name (default: all, see ``Evaluator``)."""
    import torch
    from rich.progress import track

    from .fidelity import lr_consistency

    pairs, unpaired, ambiguous = pair_by_stem(sr_dir, hr_dir, sr_suffix)
    notes = list(ambiguous.values())
    evaluator = Evaluator(weights_dir, device, channels, niqe_params, metrics)
    lr_paths, lr_ambiguous = match_stems(lr_dir) if lr_dir is not None else ({}, {})
    conversions = _Conversions()
    rows: list[dict] = []
    no_lr: list[str] = []
    batches = [pairs[i:i + batch_size] for i in range(0, len(pairs), batch_size)]
    for batch in (track(batches, description="evaluating", transient=True) if progress else batches):
        by_size: dict[tuple, list] = defaultdict(list)  # a batch is stacked, so only same-sized images go together
        for stem, sr_path, hr_path in batch:
            pair = _read_pair(sr_path, hr_path, notes, conversions)
            if pair is None:
                continue
            lr = None
            if lr_dir is not None:
                if stem in lr_paths:
                    lr = _read_lr(lr_paths[stem], pair[0], notes, conversions)
                elif stem in lr_ambiguous:
                    notes.append(f"{listed(lr_ambiguous[stem])}: {AMBIGUOUS}; LR consistency of {stem} skipped")
                else:
                    no_lr.append(stem)
            by_size[tuple(pair[0].shape)].append((stem, *pair, lr))
        for group in by_size.values():
            scores = evaluator.score_batch(torch.stack([g[1] for g in group]), torch.stack([g[2] for g in group]))
            for i, (stem, sr, _hr, lr) in enumerate(group):
                row = {"stem": stem, **{k: float(v[i]) for k, v in scores.items()}}
                if lr is not None:
                    row["LR-L1"] = float(lr_consistency(sr[None], lr[None])[0])
                rows.append(row)
    rows.sort(key=lambda row: row["stem"])
    if no_lr:
        notes.append(f"LR-L1 left out for {len(no_lr)} pair(s) with no LR image in {lr_dir}: "
                     f"{', '.join(no_lr[:5])}{', ...' if len(no_lr) > 5 else ''}")
    summary, summary_notes = summarise(rows)
    set_metrics = evaluator.set_metrics() if rows else {}
    return {"pairs": len(rows), "skipped": len(pairs) + len(ambiguous) - len(rows), "summary": summary,
            "set_metrics": set_metrics, "protocol": evaluator.protocol, "per_image": rows,
            "notes": evaluator.notes + notes + conversions.lines() + summary_notes, "unpaired": unpaired}


def json_safe(value):
    """``value`` with every non-finite float replaced by the string "inf", "-inf" or "nan" (strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_results(result: dict, out_dir: Path) -> tuple[Path, Path]:
    """metrics.json (everything but the rows, strict JSON) and metrics.csv (one row per image, inf/nan as text)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = out_dir / "metrics.json", out_dir / "metrics.csv"
    text = json.dumps(json_safe({k: v for k, v in result.items() if k != "per_image"}), indent=2, allow_nan=False)
    with atomic_write_path(json_path) as tmp:
        tmp.write_text(text)
    columns = ["stem"] + [k for k in PER_IMAGE_ORDER if any(k in row for row in result["per_image"])]
    with atomic_write_path(csv_path) as tmp:
        tmp.write_text(csv_text(result["per_image"], columns))  # str(float) is already "inf" / "nan"
    return json_path, csv_path


def format_value(key: str, value: float) -> str:
    """A mean as shown on screen: 4 decimals (KID in units of 1e-3), inf / -inf / nan as such."""
    return f"{value * (1e3 if key == 'KID' else 1):.4f}"  # Python formats non-finite floats as inf / nan
