import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from rls_lightning.metrics.fidelity import lr_consistency, ms_ssim, ms_ssim_fits, psnr, ssim


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


def _two_batches(size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(SR, HR) batches in [0, 1] of 2 and 1 images: smooth random HR images and noisy, shifted SR images."""
    rng = torch.Generator().manual_seed(5)
    batches = []
    for n in (2, 1):
        hr = F.interpolate(torch.rand(n, 3, 8, 8, generator=rng), size=(size, size), mode="bicubic").clamp(0, 1)
        sr = (hr.roll(1, dims=-1) + 0.1 * torch.randn(n, 3, size, size, generator=rng)).clamp(0, 1)
        batches.append((sr, hr))
    return batches


_SCORED: dict = {}


@pytest.fixture
def scored(fake_weights):
    """The Evaluator fed with two batches, and what it scored: (evaluator, per-image scores, SR, HR); computed once
    for the module (``fake_weights`` is the same folder for the whole session), the networks are slow on CPU."""
    if not _SCORED:
        from rls_lightning.metrics.evaluator import Evaluator

        evaluator = Evaluator(fake_weights)
        batches = _two_batches()
        scores = [evaluator.score_batch(sr, hr) for sr, hr in batches]
        per_image = {key: torch.cat([s[key] for s in scores]) for key in scores[0]}
        sr, hr = (torch.cat(images) for images in zip(*batches))
        _SCORED["run"] = evaluator, per_image, sr, hr
    return _SCORED["run"]


def _kid_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the polynomial kernel k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018, eq. 4 and
    sec. 3.2), written out over all pairs."""
    d, m = x.shape[1], x.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


@pytest.mark.slow
def test_evaluate_kid_is_the_unbiased_mmd_of_the_features_of_the_8_bit_images(scored):
    evaluator, _, sr, hr = scored
    kid = evaluator.set_metrics()["KID"]

    def features(images):  # images as 8-bit files hold them: rounded, not truncated
        as_uint8 = torch.from_numpy(np.rint(images.numpy().astype(np.float64) * 255).astype(np.uint8))
        with torch.no_grad():  # the network itself equals torch-fidelity's: tests/test_fid_protocol.py
            return evaluator.inception(as_uint8).double().numpy()

    # 3 images over two batches: the subsets are then the whole sets, so KID is the MMD of all images, whatever
    # the sampling
    expected = _kid_numpy(features(hr), features(sr))
    assert kid == pytest.approx(expected, rel=1e-4, abs=1e-9)


def _lpips_alexnet(alexnet_file, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS v0.1 (Zhang et al. 2018, eq. 1) of images in [0, 1], written out: inputs mapped to [-1, 1] and
    standardised with the paper's per-channel shift and scale, AlexNet's five ReLU outputs normalised over
    channels, squared differences weighted by the released linear heads, averaged over space, summed."""
    import lpips
    from torchvision.models import alexnet

    features = alexnet(weights=None).features
    features.load_state_dict({k[len("features."):]: v for k, v in torch.load(alexnet_file, weights_only=True).items()
                              if k.startswith("features.")})
    heads = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", weights_only=True,
                       map_location="cpu")
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def relu_outputs(images):
        h, outs = ((images * 2 - 1) - shift) / scale, []
        for index, layer in enumerate(features[:12]):
            h = layer(h)
            if index in (1, 4, 7, 9, 11):
                outs.append(h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return outs

    with torch.no_grad():
        total = torch.zeros(len(x))
        for level, (fx, fy) in enumerate(zip(relu_outputs(x), relu_outputs(y))):
            weight = heads[f"lin{level}.model.1.weight"].view(1, -1, 1, 1)
            total += ((fx - fy) ** 2 * weight).sum(1).mean(dim=(1, 2))
    return total


def test_evaluate_lpips_is_the_written_out_lpips_on_the_registrys_alexnet(scored, fake_weights):
    _, per_image, sr, hr = scored
    expected = _lpips_alexnet(fake_weights / "alexnet-owt-7be5be79.pth", sr, hr)
    assert expected.min() > 0.01  # different images: a score of 0 would not pass for them
    torch.testing.assert_close(per_image["LPIPS"], expected, rtol=1e-4, atol=1e-6)


def _calibrated_facenet_file(folder: Path) -> Path:
    """A random FaceNet whose batch norms hold statistics measured on random images (data-dependent init): with the
    default statistics the activations fade and every embedding is nearly the same, so any input would do."""
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    net = InceptionResnetV1(pretrained=None, classify=False)
    for module in net.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(F.interpolate(torch.rand(8, 3, 5, 5), size=(160, 160), mode="bicubic") * 2 - 1)
    torch.save(net.state_dict(), folder / "facenet.pt")
    return folder / "facenet.pt"


@pytest.mark.slow
def test_face_identity_embeds_160_px_standardised_images(tmp_path):
    from facenet_pytorch import InceptionResnetV1

    from rls_lightning.metrics.feature_networks import FaceIdentity

    path = _calibrated_facenet_file(tmp_path)
    images = torch.cat([hr for _, hr in _two_batches()])  # 3 smooth 64 px images in [0, 1]
    with torch.no_grad():
        ours = FaceIdentity(path)(images).double()
    net = InceptionResnetV1(pretrained=None, classify=False).eval()
    net.load_state_dict(torch.load(path, weights_only=True))

    def embeddings(gain: float) -> torch.Tensor:
        # PIL's bilinear enlargement of the float image, channel by channel (when enlarging, its weights are those
        # of interpolate(..., align_corners=False)); FaceNet's (x - 127.5) / 128 on 0..255; unit length
        resized = np.stack([[np.asarray(Image.fromarray(channel).resize((160, 160), Image.BILINEAR))
                             for channel in image] for image in images.numpy()])
        with torch.no_grad():
            e = net((torch.from_numpy(resized) * gain - 127.5) / 128).double()
        return e / e.norm(dim=1, keepdim=True)

    expected = embeddings(255.0)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-4)
    # the embeddings depend on the input: other images or another scaling land far outside that tolerance
    assert (expected[0] @ expected[1:].T).max() < 0.99
    assert ((embeddings(1.0) - expected).norm(dim=1) > 1e-2).all()


def test_a_metric_file_that_is_not_the_registrys_is_refused(fake_weights, tmp_path):
    from rls_lightning.metrics.feature_networks import load_lpips
    from rls_lightning.weights import VerificationFailed

    (tmp_path / "alexnet-owt-7be5be79.pth").write_bytes(b"something else")
    with pytest.raises(VerificationFailed, match=r"alexnet-owt-7be5be79\.pth: sha256 .* differs from alexnet's"):
        load_lpips(tmp_path)


def _write(folder: Path, name: str, array: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


@pytest.mark.slow
def test_evaluate_end_to_end(tmp_path, fake_weights):
    from rls_lightning.cli.evaluate import main
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
    from rls_lightning.cli.make_lr import main
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
    from rls_lightning.metrics.evaluator import summarise, write_results
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


def test_the_per_image_metrics_are_chosen_by_name_from_the_registry():
    from rls_lightning.metrics import registry
    from rls_lightning.metrics.evaluator import PER_IMAGE_ORDER

    assert registry.metric_names() == ["PSNR", "SSIM", "MS-SSIM", "LPIPS", "ID", "NIQE"]  # metrics.csv's columns
    assert PER_IMAGE_ORDER == [*registry.metric_names(), "LR-L1"]
    with pytest.raises(registry.UnknownMetric, match="unknown metric 'PNSR'; known: PSNR, SSIM, MS-SSIM"):
        registry.get_metric("PNSR")
    with pytest.raises(ValueError, match="already registered"):
        registry.register_metric("PSNR")(lambda context, sr, hr: None)


def test_an_evaluator_runs_only_the_metrics_it_is_given(tmp_path, monkeypatch):
    from rls_lightning.metrics import registry
    from rls_lightning.metrics.evaluator import Evaluator

    monkeypatch.setenv("RLS_OFFLINE", "1")
    with pytest.raises(registry.UnknownMetric):
        Evaluator(tmp_path, metrics=["PSNR", "LPIPS-VGG"])
    sr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    scores = Evaluator(tmp_path, metrics=["SSIM", "PSNR"]).score_batch(sr, sr.flip(-1))
    assert list(scores) == ["SSIM", "PSNR"] and scores["PSNR"].shape == (2,)
