"""The model card's held-out evaluation (scripts/evaluate_demo_model.py), checked against PIL and numpy: which
faces it takes, the LR inputs it makes, and every number it reports."""
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from support.repo_scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
HOLDOUT = 3


def read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def pil_bicubic(image: np.ndarray, size: int) -> np.ndarray:
    """Per channel in PIL's float mode, so no intermediate rounding."""
    channels = [np.asarray(Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(
        (size, size), Image.BICUBIC)) for c in range(3)]
    return np.stack(channels, -1).astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(1 / np.mean((a - b) ** 2))


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """Eight 64 px faces as the 'training data'; three held out; a few steps of RLS+ at 4x and 8x."""
    data = tmp_path_factory.mktemp("faces")
    for path in sorted((ROOT / "data" / "demo" / "hr").glob("*.png")):
        shutil.copy(path, data / path.name)
    work = tmp_path_factory.mktemp("heldout")
    code = load_script("evaluate_demo_model").main([
        "--data", str(data), "--holdout", str(HOLDOUT), "--split-seed", "0", "--work-dir", str(work),
        "--steps", "3", "--refine-steps", "2", "--batch-size", "2", "--accelerator", "cpu", "--precision", "32-true"])
    assert code == 0
    with open(work / "heldout_per_face.csv") as file:
        per_face = list(csv.DictReader(file))
    return data, work, json.loads((work / "heldout.json").read_text()), per_face


@pytest.mark.slow
def test_takes_the_faces_training_held_out(evaluation):
    data, _, summary, per_face = evaluation
    names = sorted(p.name for p in data.iterdir())
    held = sorted(names[i] for i in np.random.default_rng(0).permutation(len(names))[-HOLDOUT:])
    for factor in (4, 8):
        for method in ("bicubic", "rls", "rls+"):
            faces = [row["face"] for row in per_face if row["factor"] == str(factor) and row["method"] == method]
            assert faces == [Path(n).stem for n in held]
    assert [(r["factor"], r["method"], r["images"]) for r in summary["results"]] == [
        (f, m, HOLDOUT) for f in (4, 8) for m in ("bicubic", "rls", "rls+")]
    assert summary["steps"] == 3 and summary["refine_steps"] == 2


@pytest.mark.slow
def test_lr_inputs_are_pil_bicubic_of_the_held_out_faces(evaluation):
    data, work, _, per_face = evaluation
    for row in per_face:
        factor, face = int(row["factor"]), row["face"]
        expected = pil_bicubic(read(data / f"{face}.png"), 64 // factor)
        assert np.abs(read(work / f"lr{factor}x" / f"{face}.png") - expected).max() <= 0.5 / 255 + 1e-6


@pytest.mark.slow
def test_per_face_numbers_match_pil_and_numpy(evaluation):
    data, work, _, per_face = evaluation
    for row in per_face:
        factor, face = int(row["factor"]), row["face"]
        hr, lr = read(data / f"{face}.png"), read(work / f"lr{factor}x" / f"{face}.png")
        if row["method"] == "bicubic":
            image, tolerance = np.clip(np.round(pil_bicubic(lr, 64) * 255), 0, 255) / 255, 0.02
        else:  # what invert.py wrote: the result, or the RLS anchor beside it
            suffix = "_rls" if row["method"] == "rls" else ""
            image, tolerance = read(work / f"rls+_{factor}x" / f"{face}{suffix}.png"), 1e-3
        assert float(row["psnr"]) == pytest.approx(psnr(image, hr), abs=tolerance)
        assert float(row["lr_consistency"]) == pytest.approx(
            np.abs(pil_bicubic(image, lr.shape[0]) - lr).mean(), abs=1e-5)


@pytest.mark.slow
def test_summary_is_the_mean_and_paired_confidence_interval(evaluation):
    _, _, summary, per_face = evaluation
    for result in summary["results"]:
        def column(method, key):
            return np.array([float(r[key]) for r in per_face
                             if r["factor"] == str(result["factor"]) and r["method"] == method])
        ours, bicubic = column(result["method"], "psnr"), column("bicubic", "psnr")
        difference = ours - bicubic
        assert result["psnr"] == pytest.approx(ours.mean(), abs=1e-3)
        assert result["psnr_minus_bicubic"] == pytest.approx(difference.mean(), abs=1e-3)
        assert result["above_bicubic"] == pytest.approx(np.mean(ours > bicubic))
        assert result["lr_consistency"] == pytest.approx(column(result["method"], "lr_consistency").mean(), abs=1e-6)
        if result["method"] != "bicubic":
            assert result["psnr_minus_bicubic_ci95"] == pytest.approx(
                1.96 * difference.std(ddof=1) / np.sqrt(HOLDOUT), abs=1e-3)
    rls, rls_plus = (next(r for r in summary["results"] if r["factor"] == 8 and r["method"] == m)
                     for m in ("rls", "rls+"))
    assert rls["psnr"] != rls_plus["psnr"]  # the anchor and the tuned result are different images


def test_markdown_table_rows():
    common = {"factor": 8, "lr_size": 8, "images": 1000}
    rows = [{**common, "method": "bicubic", "psnr": 20.3170, "psnr_minus_bicubic": 0, "psnr_minus_bicubic_ci95": 0,
             "above_bicubic": 0, "lr_consistency": 0.018747},
            {**common, "method": "rls+", "psnr": 19.6087, "psnr_minus_bicubic": -0.7083,
             "psnr_minus_bicubic_ci95": 0.1234, "above_bicubic": 0.3456, "lr_consistency": 0.018594}]
    lines = load_script("evaluate_demo_model").markdown_table(rows).splitlines()
    assert lines[2:] == ["| 8x | 8x8 | 1,000 | bicubic upsampling | 20.32 |  |  | 0.0187 |",
                         "| 8x | 8x8 | 1,000 | RLS+ | 19.61 | -0.71 ± 0.12 | 35% | 0.0186 |"]
    assert all(line.count("|") == lines[0].count("|") for line in lines)
