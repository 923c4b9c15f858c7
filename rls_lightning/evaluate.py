"""Evaluate super-resolved images against the ground truth with the paper's metrics (section 4, Tables 1-5).

    python -m rls_lightning.evaluate --sr-dir celeba_lr16_rls+ --hr-dir celeba_hr --lr-dir celeba_lr16 \
        --weights-dir ~/weights

Pairs files by name stem (``--sr-suffix _rls`` evaluates the RLS anchors ``<stem>_rls.png`` instead). Per image:
PSNR, SSIM, MS-SSIM (images over 160 px), LPIPS (v0.1, AlexNet), identity similarity (cosine of FaceNet VGGFace2
embeddings; the paper used CurricularFace), NIQE (images of at least 192 px), and LR consistency when --lr-dir is
given. Per set: FID and KID.

Protocol (written into metrics.json, since papers differ): FID/KID use torch-fidelity's FID Inception (the
2015-12-05 TF weights of pytorch-fid / torch-fidelity, the networks behind the FID of the RLS paper, PULSE, BRGM
and GLEAN), uint8 RGB resized to 299 px by torch-fidelity's own bilinear resize, the HR images of the evaluated
pairs as the reference set. PSNR, SSIM and MS-SSIM are computed on --channels: y (default, the SR convention:
BT.601 luma as MATLAB rgb2ycbcr), rgb, or gray (MATLAB rgb2gray, what pyiqa's official SSIM / MS-SSIM scores
used). SSIM and MS-SSIM follow Wang's MATLAB scripts. NIQE uses the NIQE authors' pristine model, shipped with the
package (scripts/calibrate_metrics.py compares every metric here with the official MATLAB scores).

Pretrained networks (FID Inception, AlexNet, FaceNet) are registry files (python -m rls_lightning.weights list):
looked for in --weights-dir and the torch hub cache, downloaded once and verified when missing. With --offline
(or RLS_OFFLINE=1) or without network, each metric that cannot run is skipped with one line naming the file, its
URL and where to put it; every other metric is still computed. Writes a table on screen, metrics.json (means, set
metrics, protocol, notes) and metrics.csv (one row per image) into --out-dir (default: the SR folder).

Images are read by one decoder (``image_io.read_image``): 16-bit grayscale and 48-bit RGB PNGs at full precision,
float images when every pixel is finite and in [0, 1]. A pair with a file that cannot be read, with sizes that
differ, or smaller than SSIM's 11x11 window, is skipped with a note naming the file; so is a stem that a folder
holds twice (a.png and a.jpg: which one is meant is unknown). The others are still scored, and metrics.json says
how many pairs were scored ("pairs") and skipped ("skipped"). Metrics with a minimum size (MS-SSIM, LPIPS, NIQE)
are left out, with a note, for smaller images. Conversions (grayscale replicated, alpha dropped,
EXIF orientation applied, ...) are listed in the notes.

Non-finite values: the PSNR of an SR image identical to its HR image is +infinity, and a metric can be undefined
(NaN, e.g. NIQE of a flat image). They are shown as inf / nan on screen and in metrics.csv (Python's float()
reads both back), and written as the JSON strings "inf", "-inf" and "nan" in metrics.json, which stays strict
JSON. A mean leaves such values out and a note says how many; when nothing finite is left, the mean is inf if
every value was inf (every image identical), else nan.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .atomic import atomic_write_path
from .cli.arguments import check_device, check_input_file
from .cli.errors import UsageError, check_input_dir, check_int, check_output_dir, guarded
from .lr_images import AMBIGUOUS, listed, match_stems
from .no_grad import no_grad
from .weights import VerificationFailed, WeightsUnavailable

if TYPE_CHECKING:  # torch, the metrics and the decoder are imported when work starts: --help needs none of them
    import torch

CHANNELS = ("rgb", "y", "gray")  # metrics.fidelity.CHANNELS, named here so that --help needs no torch
PER_IMAGE_ORDER = ["PSNR", "SSIM", "MS-SSIM", "LPIPS", "ID", "NIQE", "LR-L1"]
DEFAULT_CHANNELS = "y"  # the paper and the official code are silent; the SR literature reports luma
CHANNEL_PROTOCOL = {
    "y": "the Y channel of BT.601 YCbCr as MATLAB rgb2ycbcr (16..235, not rounded), data range 255",
    "rgb": "the three RGB channels in [0, 1], data range 1 (SSIM maps averaged over the channels)",
    "gray": "MATLAB rgb2gray of the 8-bit image (rounded to integers), data range 255",
}
NIQE_MIN_SIZE = 192
# AlexNet (LPIPS's backbone): an 11x11 stride-4 convolution (padding 2), then two 3x3 stride-2 max-pools before
# its third layer, which need a 7 px map after the convolution: (31 + 4 - 11) // 4 + 1 = 7
LPIPS_MIN_SIZE = 31


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
    """Loads what it can of the feature networks, then scores batches of (SR, HR[, LR]) images."""

    def __init__(self, weights_dir: str | Path | None, device: str | torch.device = "cpu",
                 channels: str = DEFAULT_CHANNELS, niqe_params: str | Path | None = None) -> None:
        import torch
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        from .metrics.feature_networks import FID_PROTOCOL, load_face_identity, load_inception, load_lpips
        from .metrics.fidelity import CHANNELS
        from .metrics.niqe import DEFAULT_PARAMS_PATH, NIQE

        if channels not in CHANNELS:
            raise ValueError(f"channels must be one of {', '.join(CHANNELS)}, got {channels!r}")
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

    def _left_out(self, metric: str, side: int, needs: str) -> None:
        """One note per metric that images of ``side`` px are too small for."""
        if metric not in self._noted_sizes:
            self._noted_sizes.add(metric)
            self.notes.append(f"{metric} left out for images of {side} px (it needs {needs})")

    @no_grad
    def score_batch(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image metrics of same-sized ``[N, 3, H, W]`` batches in [0, 1]; feeds the set metrics too."""
        import torch

        from .image_io import to_uint8
        from .metrics.fidelity import ms_ssim, ms_ssim_fits, psnr, ssim

        sr, hr = sr.to(self.device), hr.to(self.device)
        side = min(sr.shape[-2:])
        scores = {"PSNR": psnr(sr, hr, self.channels), "SSIM": ssim(sr, hr, self.channels)}
        if ms_ssim_fits(side):
            scores["MS-SSIM"] = ms_ssim(sr, hr, self.channels)
        else:
            self._left_out("MS-SSIM", side, "more than 160 px; SSIM is reported")
        if self.lpips is not None:
            if side >= LPIPS_MIN_SIZE:
                scores["LPIPS"] = self.lpips(sr * 2 - 1, hr * 2 - 1).flatten()
            else:
                self._left_out("LPIPS", side, f"at least {LPIPS_MIN_SIZE} px for its AlexNet layers")
        if self.identity is not None:
            scores["ID"] = (self.identity(sr) * self.identity(hr)).sum(dim=1)
        if side >= NIQE_MIN_SIZE:
            niqe = [self.niqe.score(to_uint8(img * 2 - 1)) for img in sr]  # to_uint8 takes [-1, 1]
            scores["NIQE"] = torch.tensor(niqe, dtype=torch.float64)
        else:
            self._left_out("NIQE", side, f"at least {NIQE_MIN_SIZE} px: 2x2 patches of 96")
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
    from .image_io import ImageReadError, read_image

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
    from .image_io import ImageReadError, read_image
    from .metrics.fidelity import SSIM_KERNEL

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
             channels: str = DEFAULT_CHANNELS, niqe_params: Path | None = None) -> dict:
    """Score every pair; returns ``{"pairs", "skipped", "summary", "set_metrics", "protocol", "per_image",
    "notes", "unpaired"}`` (``pairs``: the number scored; non-finite values stay floats here, see ``json_safe``)."""
    import torch
    from rich.progress import track

    from .metrics.fidelity import lr_consistency

    pairs, unpaired, ambiguous = pair_by_stem(sr_dir, hr_dir, sr_suffix)
    notes = list(ambiguous.values())
    evaluator = Evaluator(weights_dir, device, channels, niqe_params)
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
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result["per_image"])  # str(float) is already "inf" / "nan"
    with atomic_write_path(csv_path) as tmp:
        tmp.write_text(buffer.getvalue())
    return json_path, csv_path


def format_value(key: str, value: float) -> str:
    """A mean as shown on screen: 4 decimals (KID in units of 1e-3), inf / -inf / nan as such."""
    return f"{value * (1e3 if key == 'KID' else 1):.4f}"  # Python formats non-finite floats as inf / nan


@guarded
def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    parser = argparse.ArgumentParser(prog="python -m rls_lightning.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sr-dir", type=Path, required=True, help="super-resolved images")
    parser.add_argument("--hr-dir", type=Path, required=True, help="ground-truth high-resolution images")
    parser.add_argument("--lr-dir", type=Path, default=None, help="the LR inputs, for LR consistency")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="folder searched first for the feature networks' files and downloaded into (default: "
                             "the torch hub cache)")
    parser.add_argument("--offline", action="store_true",
                        help="never download (as RLS_OFFLINE=1): metrics whose network is missing are skipped with "
                             "a line saying what to put where")
    parser.add_argument("--channels", choices=CHANNELS, default=DEFAULT_CHANNELS,
                        help="what PSNR, SSIM and MS-SSIM compare: y = BT.601 luma (default, the SR convention), "
                             "rgb = all three channels, gray = MATLAB rgb2gray (pyiqa's official SSIM scores)")
    parser.add_argument("--niqe-params", type=Path, default=None,
                        help="NIQE pristine model: MATLAB modelparameters.mat or .npz (default: the authors' "
                             "model shipped with the package)")
    parser.add_argument("--out-dir", type=Path, default=None, help="where metrics.json/csv go (default: --sr-dir)")
    parser.add_argument("--sr-suffix", default="", help="evaluate <stem><suffix>.png, e.g. _rls for the anchors")
    parser.add_argument("--batch-size", type=int, default=16, help="image pairs scored together (>= 1)")
    parser.add_argument("--device", default="auto",
                        help="cpu, cuda, cuda:N, mps, or auto (cuda when a GPU is visible, else cpu)")
    args = parser.parse_args(argv)
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_input_dir("--sr-dir", args.sr_dir)
    check_input_dir("--hr-dir", args.hr_dir)
    check_input_dir("--lr-dir", args.lr_dir, required=False)
    if args.weights_dir is not None and args.weights_dir.exists():
        check_input_dir("--weights-dir", args.weights_dir)  # a missing one is created by the first download
    if args.niqe_params is not None:
        check_input_file("--niqe-params", args.niqe_params)
    out_dir = args.out_dir or args.sr_dir
    check_output_dir("--out-dir" if args.out_dir else "the default --out-dir (--sr-dir)", out_dir,
                     not_equal={"--hr-dir": args.hr_dir, "--lr-dir": args.lr_dir})
    check_int("--batch-size", args.batch_size, 1)
    check_device("--device", args.device)
    pairs, _, ambiguous = pair_by_stem(args.sr_dir, args.hr_dir, args.sr_suffix)
    if not pairs:
        raise UsageError(f"--sr-dir {args.sr_dir} and --hr-dir {args.hr_dir} have no image name in common "
                         f"(SR files are matched as <stem>{args.sr_suffix}.<ext>)" if not ambiguous else
                         f"no image pair to score: {next(iter(ambiguous.values()))}"
                         + (f" (and {len(ambiguous) - 1} more)" if len(ambiguous) > 1 else ""))

    console = Console(soft_wrap=True, highlight=False)
    if args.offline:
        os.environ["RLS_OFFLINE"] = "1"
    try:
        result = evaluate(args.sr_dir, args.hr_dir, args.lr_dir, args.weights_dir, args.device, args.batch_size,
                          args.sr_suffix, channels=args.channels, niqe_params=args.niqe_params)
    except ValueError as err:  # an unusable --niqe-params file
        raise UsageError(str(err)) from None
    for note in result["notes"]:
        console.print(Text(note, style="yellow"))  # Text: file names are never read as markup
    for side, names in result["unpaired"].items():
        if names:
            console.print(Text(f"{len(names)} file(s) {side.replace('_', ' ')}: {', '.join(names[:5])}"
                               f"{', ...' if len(names) > 5 else ''}"))
    if not result["pairs"]:
        print(f"error: none of the {result['skipped']} image pair(s) could be scored (see the notes above); "
              "nothing written", file=sys.stderr)
        return 1
    skipped = f", {result['skipped']} skipped" if result["skipped"] else ""
    table = Table(title=Text(f"{args.sr_dir} vs {args.hr_dir} ({result['pairs']} pairs{skipped})"))
    values = {**result["set_metrics"], **result["summary"]}
    for key in values:
        table.add_column(key + (" (x1e3)" if key == "KID" else ""), justify="right")
    table.add_row(*[format_value(k, v) for k, v in values.items()])
    console.print(table)
    json_path, csv_path = write_results(result, out_dir)
    console.print(Text(f"wrote {json_path} and {csv_path}"))
    return 0


if __name__ == "__main__":
    from rls_lightning.interrupts import for_process

    for_process(main)
