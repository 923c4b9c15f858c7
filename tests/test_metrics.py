import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from rls_lightning.metrics.fidelity import lr_consistency, ms_ssim, ms_ssim_fits, psnr, ssim


class PassThrough(nn.Module):
    """A 'feature network' that returns its input, so that FID/KID see features we control."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x.double()


def test_psnr_against_numpy():
    a, b = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    for n in range(3):
        mse = ((a[n].numpy().astype(np.float64) - b[n].numpy()) ** 2).mean()
        assert psnr(a, b)[n].item() == pytest.approx(10 * np.log10(1 / mse), rel=1e-5)


def test_ms_ssim_needs_more_than_160_pixels_and_ssim_of_identical_images_is_one():
    assert not ms_ssim_fits(160) and ms_ssim_fits(161) and ms_ssim_fits(256)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(ssim(x, x), torch.ones(2))
    with pytest.raises(ValueError, match="MS-SSIM needs images larger than 160"):
        ms_ssim(x, x)
    assert ms_ssim(torch.rand(1, 3, 192, 192), torch.rand(1, 3, 192, 192)).shape == (1,)


def test_lr_consistency_is_zero_for_the_exact_downscale():
    from rls_lightning.degradations import downsample_bicubic
    hr = torch.rand(2, 3, 32, 32)
    lr = (downsample_bicubic(hr * 2 - 1, 4) + 1) / 2
    assert lr_consistency(hr, lr).abs().max() < 1e-6
    assert lr_consistency(hr, lr + 0.1).mean().item() == pytest.approx(0.1, abs=1e-5)


def _frechet_scipy(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_scipy_and_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    d, n = 4, 20000
    a = rng.normal(size=(d, d))
    cov1 = a @ a.T / d + np.eye(d)
    cov2 = np.diag([0.5, 1.0, 2.0, 3.0])
    mu1, mu2 = np.zeros(d), np.array([1.0, -1.0, 0.5, 0.0])
    x = rng.multivariate_normal(mu1, cov1, size=n)
    y = rng.multivariate_normal(mu2, cov2, size=n)
    fid = FrechetInceptionDistance(feature=PassThrough(d))
    fid.update(torch.from_numpy(x), real=True)
    fid.update(torch.from_numpy(y), real=False)
    value = float(fid.compute())
    assert value == pytest.approx(_frechet_scipy(x, y), rel=1e-6)
    closed_form = ((mu1 - mu2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * linalg.sqrtm(cov1 @ cov2).real)
    assert value == pytest.approx(closed_form, rel=0.03)


def _kid_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018)."""
    d, m = x.shape[1], x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def test_kid_matches_a_numpy_unbiased_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 8)), rng.normal(0.3, 1.2, size=(300, 8))
    kid = KernelInceptionDistance(feature=PassThrough(8), subsets=1, subset_size=300)
    kid.update(torch.from_numpy(x), real=True)
    kid.update(torch.from_numpy(y), real=False)
    mean, _ = kid.compute()
    assert float(mean) == pytest.approx(_kid_numpy(x, y), rel=1e-6)


def test_lpips_backbone_is_read_from_the_weights_file(fake_weights):
    from torchvision.models import alexnet

    from rls_lightning.metrics.feature_networks import load_lpips
    model = load_lpips(fake_weights)
    reference = alexnet(weights=None)
    reference.load_state_dict(torch.load(fake_weights / "alexnet-owt-7be5be79.pth", weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    ours = model.net.slice2(model.net.slice1(x))
    theirs = reference.features[:5](x)
    torch.testing.assert_close(ours, theirs)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    assert model(images, images).abs().max() < 1e-6


def test_face_identity_is_a_cosine_of_unit_embeddings(fake_weights):
    from rls_lightning.metrics.feature_networks import load_face_identity
    net = load_face_identity(fake_weights)
    x = torch.rand(3, 3, 64, 64)
    e = net(x)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    assert (e * net(x)).sum(1).min() > 0.9999


def test_a_metric_file_that_is_not_the_registrys_is_refused(fake_weights, tmp_path):
    from rls_lightning.metrics.feature_networks import load_lpips
    from rls_lightning.weights import VerificationFailed

    (tmp_path / "alexnet-owt-7be5be79.pth").write_bytes(b"something else")
    with pytest.raises(VerificationFailed, match=r"alexnet-owt-7be5be79\.pth: sha256 .* differs from alexnet's"):
        load_lpips(tmp_path)


def _write(folder: Path, name: str, array: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


def test_evaluate_end_to_end(tmp_path, fake_weights):
    from rls_lightning.evaluate import main
    rng = np.random.default_rng(0)
    for i in range(4):
        hr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
        _write(tmp_path / "hr", f"f{i}.png", hr)
        _write(tmp_path / "sr", f"f{i}.png", sr)
        _write(tmp_path / "sr", f"f{i}_rls.png", hr)  # an anchor: identical to the HR image
    _write(tmp_path / "sr", "extra.png", np.zeros((32, 32, 3), np.uint8))
    assert main(["--sr-dir", str(tmp_path / "sr"), "--hr-dir", str(tmp_path / "hr"), "--weights-dir",
                 str(fake_weights)]) == 0
    result = json.loads((tmp_path / "sr" / "metrics.json").read_text())
    assert result["pairs"] == 4
    assert "extra" in result["unpaired"]["sr_only"]
    assert set(result["summary"]) == {"PSNR", "SSIM", "LPIPS", "ID"} and set(result["set_metrics"]) == {"FID", "KID"}
    assert any("MS-SSIM left out for images of 32 px" in n for n in result["notes"])
    assert any("NIQE left out for images of 32 px" in n for n in result["notes"])
    rows = (tmp_path / "sr" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("stem,PSNR,SSIM,LPIPS,ID") and len(rows) == 5

    def luma(path):  # BT.601 Y as MATLAB rgb2ycbcr, on 0..255
        return 16 + np.asarray(Image.open(path), float) / 255 @ np.array([65.481, 128.553, 24.966])

    expected = np.mean([10 * np.log10(255 ** 2 / np.mean(
        (luma(tmp_path / "sr" / f"f{i}.png") - luma(tmp_path / "hr" / f"f{i}.png")) ** 2)) for i in range(4)])
    assert result["summary"]["PSNR"] == pytest.approx(expected, rel=1e-4)
    assert result["protocol"]["PSNR/SSIM/MS-SSIM"].startswith("y: ")
    # the anchors are the HR images themselves: perfect scores
    # (without the networks: the fidelity metrics alone)
    assert main(["--sr-dir", str(tmp_path / "sr"), "--hr-dir", str(tmp_path / "hr"), "--sr-suffix", "_rls",
                 "--out-dir", str(tmp_path / "anchors"), "--offline"]) == 0
    anchors = json.loads((tmp_path / "anchors" / "metrics.json").read_text())
    assert anchors["summary"]["SSIM"] == pytest.approx(1.0) and anchors["summary"]["PSNR"] == "inf"
    assert set(anchors["summary"]) == {"PSNR", "SSIM"} and anchors["set_metrics"] == {}


def test_make_lr_matches_pil_and_records_the_corruption(tmp_path):
    from rls_lightning.make_lr import main
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    smooth = np.stack([128 + 100 * np.sin(2 * np.pi * (c + 1) * xx) * np.cos(2 * np.pi * yy) for c in range(3)], -1)
    _write(tmp_path / "hr", "a.png", np.clip(smooth, 0, 255).astype(np.uint8))
    _write(tmp_path / "hr", "odd.png", rng.integers(0, 256, (60, 60, 3), dtype=np.uint8))
    assert main(["--hr-dir", str(tmp_path / "hr"), "--factor", "8"]) == 0
    out = tmp_path / "hr_lr8"
    ours = np.asarray(Image.open(out / "a.png"), dtype=int)
    pil = np.asarray(Image.open(tmp_path / "hr" / "a.png").resize((8, 8), Image.BICUBIC), dtype=int)
    assert ours.shape == (8, 8, 3) and np.abs(ours - pil).max() <= 1
    sidecar = json.loads((out / "degradation.json").read_text())
    assert sidecar["factor"] == 8 and sidecar["corruption"] is None and "odd.png" in sidecar["skipped"][0]

    for run in (1, 2):
        assert main(["--hr-dir", str(tmp_path / "hr"), "--factor", "8", "--corruption", "salt-pepper",
                     "--strength", "0.2", "--seed", "3", "--out-dir", str(tmp_path / f"sp{run}")]) == 0
    a = np.asarray(Image.open(tmp_path / "sp1" / "a.png"))
    assert np.array_equal(a, np.asarray(Image.open(tmp_path / "sp2" / "a.png")))  # seeded
    extreme = ((a == 0).all(-1) | (a == 255).all(-1)).mean()
    assert 0.05 < extreme < 0.4
    sidecar = json.loads((tmp_path / "sp1" / "degradation.json").read_text())
    assert (sidecar["corruption"], sidecar["strength"], sidecar["seed"]) == ("salt-pepper", 0.2, 3)
    assert main(["--hr-dir", str(tmp_path / "hr"), "--factor", "8", "--corruption", "motion-blur"]) == 0
    assert json.loads((tmp_path / "hr_lr8_motion-blur" / "degradation.json").read_text())["strength"] == 8.0


def test_means_leave_non_finite_values_out_and_json_stays_strict(tmp_path):
    from rls_lightning.evaluate import summarise, write_results
    rows = [{"stem": "a", "PSNR": float("inf"), "NIQE": float("nan")}, {"stem": "b", "PSNR": 30.0, "NIQE": 4.0},
            {"stem": "c", "PSNR": 40.0, "NIQE": float("nan")}]
    summary, notes = summarise(rows)
    assert summary == {"PSNR": 35.0, "NIQE": 4.0}
    assert notes == ["PSNR is infinite for 1 of 3 image(s) (SR identical to HR), left out of its mean",
                     "NIQE undefined (nan) for 2 of 3 image(s), left out of its mean"]
    only_inf, _ = summarise([{"stem": "a", "PSNR": float("inf")}])
    only_nan, _ = summarise([{"stem": "a", "NIQE": float("nan")}])
    assert only_inf["PSNR"] == float("inf") and np.isnan(only_nan["NIQE"])

    def refuse(constant):
        raise AssertionError(constant)

    result = {"pairs": 3, "summary": {**summary, "ID": float("nan"), "X": -float("inf")}, "set_metrics": {},
              "per_image": rows, "notes": notes}
    json_path, csv_path = write_results(result, tmp_path)
    written = json.loads(json_path.read_text(), parse_constant=refuse)
    assert written["summary"] == {"PSNR": 35.0, "NIQE": 4.0, "ID": "nan", "X": "-inf"}
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "stem,PSNR,NIQE" and lines[1] == "a,inf,nan"
    assert [float(v) for v in lines[1].split(",")[1:]][0] == float("inf")  # float() reads them back
