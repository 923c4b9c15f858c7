"""evaluate on a fresh machine without network: one line per metric it cannot run (file, URL, where to put it),
every other metric computed (checked against independent numpy computations), exit 0."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from rls_lightning.paths import PROJECT_ROOT
from rls_lightning.weights import registry

EVALUATED = ["fid-inception", "alexnet", "facenet-vggface2"]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """Three demo faces enlarged to 256 px (HR), a blurred copy (SR) and their 4x bicubic LR."""
    root = tmp_path_factory.mktemp("pairs")
    for name in ("hr", "sr", "lr"):
        (root / name).mkdir()
    for path in sorted((PROJECT_ROOT / "data" / "demo" / "hr").glob("*.png"))[:3]:
        hr = Image.open(path).convert("RGB").resize((256, 256), Image.BICUBIC)
        hr.save(root / "hr" / path.name)
        hr.filter(ImageFilter.GaussianBlur(1.5)).save(root / "sr" / path.name)
        hr.resize((64, 64), Image.BICUBIC).save(root / "lr" / path.name)
    return root


def _run(pairs: Path, out: Path, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "TORCH_HOME": str(tmp_path / "fresh-torch-home"), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", "rls_lightning.evaluate", "--sr-dir", str(pairs / "sr"),
                           "--hr-dir", str(pairs / "hr"), "--lr-dir", str(pairs / "lr"), "--out-dir", str(out)],
                          env=environment, capture_output=True, text=True, timeout=300)


def _luma(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    return 16 + rgb @ np.array([65.481, 128.553, 24.966])


def test_offline_evaluate_names_what_is_missing_and_computes_the_rest(pairs, tmp_path):
    result = _run(pairs, tmp_path / "out", tmp_path, RLS_OFFLINE="1")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if "skipped:" in line]
    hub = tmp_path / "fresh-torch-home" / "hub" / "checkpoints"
    assert len(lines) == len(EVALUATED)
    for line, name in zip(lines, EVALUATED):
        entry = registry.lookup(name)
        assert entry.filename in line and entry.urls[0] in line and f"put it at {hub / entry.filename}" in line
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["summary"]) == {"PSNR", "SSIM", "MS-SSIM", "NIQE", "LR-L1"}
    assert metrics["set_metrics"] == {}
    assert metrics["protocol"]["PSNR/SSIM/MS-SSIM"].startswith("y: ")
    assert "2015-12-05" in metrics["protocol"]["FID/KID"]
    expected_psnr = np.mean([10 * np.log10(255 ** 2 / np.mean((_luma(pairs / "sr" / p.name)
                                                                - _luma(p)) ** 2))
                             for p in sorted((pairs / "hr").glob("*.png"))])
    assert metrics["summary"]["PSNR"] == pytest.approx(expected_psnr, abs=1e-3)
    from rls_lightning.metrics.niqe import NIQE

    niqe = NIQE.default()
    expected_niqe = np.mean([niqe.score(np.asarray(Image.open(p).convert("RGB")))
                             for p in sorted((pairs / "sr").glob("*.png"))])
    assert metrics["summary"]["NIQE"] == pytest.approx(expected_niqe, rel=1e-6)
    assert not hub.exists() or not any(hub.iterdir())  # nothing half-downloaded left behind


def test_without_network_the_download_failure_is_one_line_and_evaluate_still_succeeds(pairs, tmp_path):
    # A mirror on a closed local port stands for "no network" without depending on this machine's DNS.
    result = _run(pairs, tmp_path / "out", tmp_path, RLS_OFFLINE="0", RLS_WEIGHTS_MIRROR="http://127.0.0.1:9/w")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "skipped:" in line]
    assert len(lines) == len(EVALUATED)
    for line, name in zip(lines, EVALUATED):
        entry = registry.lookup(name)
        assert f"could not download {entry.filename} (http://127.0.0.1:9/w/{entry.filename}: no connection" in line
        assert f"download http://127.0.0.1:9/w/{entry.filename} and put it at" in line
    assert set(json.loads((tmp_path / "out" / "metrics.json").read_text())["summary"]) >= {"PSNR", "NIQE"}


def test_images_too_small_for_lpips_are_left_out_of_it_not_a_crash(tmp_path):
    """With the networks present, LPIPS's AlexNet cannot take images under LPIPS_MIN_SIZE px: the metric is left
    out for them with one note, and scored from that size on (the boundary is checked on the network itself)."""
    import warnings

    import lpips
    import torch

    from rls_lightning.metrics.evaluator import Evaluator
    from rls_lightning.metrics.registry import LPIPS_MIN_SIZE

    evaluator = Evaluator(tmp_path / "no-weights")  # offline: every network skipped
    # AlexNet with random weights (nothing downloaded); its size limits are those of the trained one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's note on its deprecated 'pretrained' argument, used by lpips
        network = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    evaluator.lpips = network.eval()
    small, large = (torch.rand(2, 1, 3, side, side, generator=torch.Generator().manual_seed(side))
                    for side in (LPIPS_MIN_SIZE - 1, LPIPS_MIN_SIZE))
    with pytest.raises(RuntimeError, match="Output size is too small"):
        evaluator.lpips(small[0] * 2 - 1, small[1] * 2 - 1)
    scores = evaluator.score_batch(small[0], small[1])
    assert "LPIPS" not in scores and set(scores) == {"PSNR", "SSIM"}
    assert [n for n in evaluator.notes if n.startswith("LPIPS left out")] == [
        f"LPIPS left out for images of {LPIPS_MIN_SIZE - 1} px (it needs at least {LPIPS_MIN_SIZE} px for its "
        "AlexNet layers)"]
    scores = evaluator.score_batch(large[0], large[1])
    expected = evaluator.lpips(large[0] * 2 - 1, large[1] * 2 - 1).flatten()
    assert torch.equal(scores["LPIPS"], expected) and scores["LPIPS"].item() > 0
