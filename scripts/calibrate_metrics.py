"""Calibrate our NIQE, PSNR, SSIM and MS-SSIM against the official (MATLAB / reference) numbers.

    pip download pyiqa==0.1.16 --no-deps -d /tmp/dl        # the wheel holds the 5 calibration image pairs
    python scripts/calibrate_metrics.py --pyiqa-wheel /tmp/dl/pyiqa-0.1.16-py3-none-any.whl
    python scripts/calibrate_metrics.py --calibration-dir path/to/ResultsCalibra   # with dist_dir/ and ref_dir/

The five TID2013 pairs (I03, I04, I06, I08, I19; 512x384 BMPs) are the ones pyiqa (IQA-PyTorch) calibrates
its metrics on, in ``ResultsCalibra/dist_dir`` and ``ResultsCalibra/ref_dir`` of its repository and wheel;
only the images are read from the wheel (it is a zip), no pyiqa code is run or needed. The official numbers
are constants below, with their source. NIQE is scored on the distorted images with the pristine model shipped
with rls_lightning (``NIQE.default()``); the full-reference metrics compare distorted with reference images,
in RGB and on the luminances ``y`` (BT.601 YCbCr) and ``gray`` (MATLAB rgb2gray) of
``rls_lightning.metrics.fidelity``.

Prints a table (ours, official, difference per image) and a JSON report (also written to ``--json``), and
exits with status 1 when a difference exceeds its tolerance (``--tol-*``; the defaults are a little above what
was measured, see README), 2 on unreadable input.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rls_lightning.metrics.fidelity import ms_ssim, psnr, ssim
from rls_lightning.metrics.niqe import NIQE

IMAGES = ("I03", "I04", "I06", "I08", "I19")
OFFICIAL_SOURCE = "github.com/chaofengc/IQA-PyTorch, ResultsCalibra/results_official.csv (commit 065c2b7)"
# Rows of OFFICIAL_SOURCE for I03, I04, I06, I08, I19. NIQE: the authors' MATLAB release; PSNR: scikit-image on
# RGB; SSIM / MS-SSIM: Wang's MATLAB scripts on rgb2gray input, SSIM without its >256-pixel downsampling
# (ResultsCalibra/ResultsCalibra.md, notes 2-4).
OFFICIAL = {
    "niqe": (15.7536293917814, 3.65492152353770, 3.23547743716998, 3.18403333858339, 8.63519663862637),
    "psnr": (21.11, 20.99, 27.01, 23.3, 21.62),
    "ssim": (0.6993, 0.9978, 0.9989, 0.9669, 0.6519),
    "ms_ssim": (0.6733, 0.9996, 0.9998, 0.9566, 0.8462),
}
# The MATLAB msssim.m run on YCbCr-Y input, recorded by pyiqa before it moved to rgb2gray input.
MS_SSIM_YCBCR_SOURCE = "github.com/chaofengc/IQA-PyTorch, ResultsCalibra/ms_ssim_org_result.txt (commit 3f32343)"
MS_SSIM_YCBCR = (0.6981, 0.9998, 0.9999, 0.9570, 0.8547)

# (our metric, channels, reference values, source, default tolerance). Measured maximum differences: NIQE
# 0.061, PSNR 0.0039 (the official values have 2 decimals), SSIM gray 5e-5 and MS-SSIM y 3e-5 (4 decimals),
# MS-SSIM gray 4.4e-3.
CHECKS = {
    "niqe": ("niqe", None, OFFICIAL["niqe"], OFFICIAL_SOURCE, 0.1),
    "psnr_rgb": ("psnr", "rgb", OFFICIAL["psnr"], OFFICIAL_SOURCE, 0.006),
    "ssim_gray": ("ssim", "gray", OFFICIAL["ssim"], OFFICIAL_SOURCE, 1e-4),
    "ms_ssim_gray": ("ms_ssim", "gray", OFFICIAL["ms_ssim"], OFFICIAL_SOURCE, 5e-3),
    "ms_ssim_y": ("ms_ssim", "y", MS_SSIM_YCBCR, MS_SSIM_YCBCR_SOURCE, 2e-4),
}
DEFAULT_TOLERANCES = {name: check[4] for name, check in CHECKS.items()}
FULL_REFERENCE = {"psnr": psnr, "ssim": ssim, "ms_ssim": ms_ssim}


def _decode(data: bytes, label: str) -> np.ndarray:
    try:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception as err:  # noqa: BLE001 - any decoder failure is an unreadable input
        raise ValueError(f"{label}: not a readable image ({err})") from None


def read_pairs(wheel: Path | None = None, directory: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (distorted, reference)}`` uint8 HxWx3 arrays, from the pyiqa wheel or a ResultsCalibra folder."""
    pairs = {}
    if wheel is not None:
        try:
            archive = zipfile.ZipFile(wheel)
        except (OSError, zipfile.BadZipFile) as err:
            raise ValueError(f"{wheel}: not a readable wheel ({err})") from None
        with archive:
            names = set(archive.namelist())
            for name in IMAGES:
                images = []
                for folder in ("dist_dir", "ref_dir"):
                    member = f"ResultsCalibra/{folder}/{name}.bmp"
                    if member not in names:
                        raise ValueError(f"{wheel}: has no {member} (is it pyiqa's wheel? pip download "
                                         "pyiqa==0.1.16 --no-deps)")
                    images.append(_decode(archive.read(member), f"{wheel}:{member}"))
                pairs[name] = tuple(images)
        return pairs
    for name in IMAGES:
        images = []
        for folder in ("dist_dir", "ref_dir"):
            path = Path(directory) / folder / f"{name}.bmp"
            if not path.is_file():
                raise ValueError(f"{directory}: has no {folder}/{name}.bmp")
            images.append(_decode(path.read_bytes(), str(path)))
        pairs[name] = tuple(images)
    return pairs


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(torch.float64) / 255.0


def measure(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Our scores, ``{metric[_channels]: {image: value}}``: NIQE and every full-reference metric x channels."""
    niqe = NIQE.default()
    ours: dict[str, dict[str, float]] = {"niqe": {}}
    for name, (distorted, reference) in pairs.items():
        ours["niqe"][name] = niqe.score(distorted)
        x, y = _tensor(distorted), _tensor(reference)
        for metric, function in FULL_REFERENCE.items():
            for channels in ("rgb", "y", "gray"):
                ours.setdefault(f"{metric}_{channels}", {})[name] = float(function(x, y, channels=channels)[0])
    return ours


def compare(ours: dict[str, dict[str, float]], tolerances: dict[str, float] | None = None) -> dict:
    """The JSON report: every check's values, references, differences, maximum |difference| and verdict."""
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    checks = {}
    for check, (metric, channels, reference, source, _) in CHECKS.items():
        key = metric if channels is None else f"{metric}_{channels}"
        values = [ours[key][name] for name in IMAGES]
        differences = [value - ref for value, ref in zip(values, reference)]
        worst = max(abs(d) for d in differences)
        checks[check] = {"ours": dict(zip(IMAGES, values)), "reference": dict(zip(IMAGES, reference)),
                         "difference": dict(zip(IMAGES, differences)), "max_abs_difference": worst,
                         "tolerance": tolerances[check], "passed": bool(worst <= tolerances[check]),
                         "source": source}
    unchecked = {key: values for key, values in ours.items()
                 if key not in {m if c is None else f"{m}_{c}" for m, c, *_ in CHECKS.values()}}
    return {"images": list(IMAGES), "checks": checks, "unchecked": unchecked,
            "passed": all(c["passed"] for c in checks.values())}


def format_table(report: dict) -> str:
    header = f"{'check':14s} {'':9s}" + "".join(f"{name:>10s}" for name in IMAGES) + f"{'max|d|':>10s}{'tol':>9s}"
    lines = [header, "-" * len(header)]
    for check, result in report["checks"].items():
        for row in ("ours", "reference", "difference"):
            cells = "".join(f"{result[row][name]:10.4f}" if row != "difference" else f"{result[row][name]:+10.5f}"
                            for name in IMAGES)
            tail = ""
            if row == "difference":
                verdict = "ok" if result["passed"] else "FAIL"
                tail = f"{result['max_abs_difference']:10.5f}{result['tolerance']:9.1e}  {verdict}"
            lines.append(f"{check if row == 'ours' else '':14s} {row[:9]:9s}{cells}{tail}")
    lines.append("")
    lines.append("without a reference:")
    for key, values in report["unchecked"].items():
        lines.append(f"{key:14s} {'ours':9s}" + "".join(f"{values[name]:10.4f}" for name in IMAGES))
    lines.append("")
    lines.append("references: " + OFFICIAL_SOURCE + "; ms_ssim_y: " + MS_SSIM_YCBCR_SOURCE)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pyiqa-wheel", type=Path, help="pyiqa's wheel (pip download pyiqa==0.1.16 --no-deps)")
    source.add_argument("--calibration-dir", type=Path, help="a folder with dist_dir/ and ref_dir/ (I03.bmp ...)")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    for check, default in DEFAULT_TOLERANCES.items():
        parser.add_argument(f"--tol-{check.replace('_', '-')}", type=float, default=default, dest=f"tol_{check}",
                            help=f"largest accepted |ours - reference| for {check} (default {default:g})")
    args = parser.parse_args(argv)
    try:
        pairs = read_pairs(args.pyiqa_wheel, args.calibration_dir)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = compare(measure(pairs), {check: getattr(args, f"tol_{check}") for check in CHECKS})
    print(format_table(report))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if not report["passed"]:
        failed = [c for c, r in report["checks"].items() if not r["passed"]]
        print(f"tolerance exceeded: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
