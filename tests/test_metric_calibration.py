"""The shipped NIQE model, the luminance channels of the fidelity metrics, and (opt-in) the calibration against
the official numbers of pyiqa's five image pairs (set RLS_CALIBRATION_WHEEL to pyiqa-0.1.16's wheel)."""
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import correlate, uniform_filter

from support.repo_scripts import load_script
from rls_lightning.metrics import niqe as niqe_module
from rls_lightning.metrics.fidelity import ms_ssim, ms_ssim_fits, psnr, ssim, to_luma
from rls_lightning.metrics.niqe import DEFAULT_PARAMS_PATH, DEFAULT_PARAMS_SHA256, NIQE

LICENCE = DEFAULT_PARAMS_PATH.parent / "NIQE_PARAMS_LICENSE.txt"


def _smooth_colour_image(seed: int, height: int, width: int) -> np.ndarray:
    """uint8 HxWx3 with image-like local correlation (blurred noise), so that SSIM is far from 0 and 1."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(height, width, 3))
    smooth = uniform_filter(noise, size=(7, 7, 1), mode="reflect")
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return np.round(255 * smooth).astype(np.uint8)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].to(torch.float64) / 255


def _luma_numpy(image: np.ndarray, channels: str) -> np.ndarray:
    """The documented formulas, written out per channel (0..255)."""
    r, g, b = (image[..., i].astype(np.float64) / 255 for i in range(3))
    if channels == "y":
        return 16 + 65.481 * r + 128.553 * g + 24.966 * b
    return np.floor(255 * (0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b) + 0.5)


# ---------------------------------------------------------------------------------------------------- (a)

def test_shipped_niqe_params_are_the_recorded_file():
    digest = hashlib.sha256(DEFAULT_PARAMS_PATH.read_bytes()).hexdigest()
    assert digest == DEFAULT_PARAMS_SHA256
    recorded = re.search(r"^sha256: ([0-9a-f]{64})$", LICENCE.read_text(), re.MULTILINE)
    assert recorded and recorded.group(1) == digest
    assert "Apache License" in LICENCE.read_text() and "BasicSR" in LICENCE.read_text()
    with np.load(DEFAULT_PARAMS_PATH) as archive:
        mean, cov = archive["mu_pris_param"], archive["cov_pris_param"]
    assert mean.dtype == cov.dtype == np.float64
    assert mean.size == 36 and cov.shape == (36, 36)
    assert np.array_equal(cov, cov.T)
    np.linalg.cholesky(cov)  # raises unless positive-definite
    assert np.isfinite(mean).all()


def test_package_data_is_inside_the_package():
    # setup.cfg ships rls_lightning.metrics' data/*.npz and data/*.txt.
    assert DEFAULT_PARAMS_PATH.parent == Path(niqe_module.__file__).resolve().parent / "data"
    assert DEFAULT_PARAMS_PATH.suffix == ".npz" and LICENCE.suffix == ".txt"


# ---------------------------------------------------------------------------------------------------- (b)

def test_default_niqe_is_the_shipped_model():
    default = NIQE.default()
    loaded = NIQE.from_file(DEFAULT_PARAMS_PATH)
    no_arguments = NIQE()
    with np.load(DEFAULT_PARAMS_PATH) as archive:
        mean, cov = archive["mu_pris_param"], archive["cov_pris_param"]
    by_hand = NIQE(mean, cov)
    for model in (default, loaded, no_arguments):
        assert np.array_equal(model.pristine_mean, by_hand.pristine_mean)
        assert np.array_equal(model.pristine_cov, by_hand.pristine_cov)
    image = _smooth_colour_image(1, 200, 216)
    expected = by_hand.score(image)
    assert np.isfinite(expected) and expected > 0
    assert default.score(image) == no_arguments.score(image) == loaded.score(image) == expected


def test_niqe_needs_both_or_neither_array():
    with pytest.raises(ValueError, match="both"):
        NIQE(np.zeros(36))


# ---------------------------------------------------------------------------------------------------- (c)

def test_luma_on_chosen_pixels():
    pixels = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 64, 32]]],
                      dtype=np.uint8)
    y = to_luma(_tensor(pixels), "y")[0, 0, 0].numpy()
    # MATLAB rgb2ycbcr(double): 16 + [65.481 128.553 24.966] * rgb
    expected = [16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966,
                16 + (65.481 * 128 + 128.553 * 64 + 24.966 * 32) / 255]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-9)
    gray = to_luma(_tensor(pixels), "gray")[0, 0, 0].numpy()
    # rgb2gray(uint8): round(0.2989 R + 0.5870 G + 0.1140 B)
    np.testing.assert_array_equal(gray, [0, 255, 76, 150, 29, 79])


def test_luma_agrees_with_pil_within_rounding():
    # PIL's 'YCbCr' is the full-range (JPEG) BT.601 Y = 0.299 R + 0.587 G + 0.114 B in 16-bit fixed point,
    # off by up to one level; studio-range Y is 16 + 219/255 of it (65.481 = 219 * 0.299, and so on).
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    pil_y = np.asarray(Image.fromarray(image).convert("YCbCr"))[..., 0].astype(np.float64)
    gray = to_luma(_tensor(image), "gray")[0, 0].numpy()
    assert np.abs(gray - pil_y).max() <= 1
    studio = to_luma(_tensor(image), "y")[0, 0].numpy()
    assert np.abs(studio - (16 + 219 / 255 * pil_y)).max() <= 219 / 255 * 1.01
    assert studio.min() >= 16 and studio.max() <= 235


# ---------------------------------------------------------------------------------------------------- (d)

def _gaussian_11():
    x = np.arange(11) - 5.0
    g = np.exp(-x ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g)
    return window / window.sum()


def _ssim_numpy(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> tuple[float, float]:
    """Wang's ssim_index_new.m on 2-D arrays: (mean SSIM, mean cs), 'valid' filtering with the 2-D window."""
    window = _gaussian_11()

    def valid(t):
        return correlate(t, window, mode="constant")[5:-5, 5:-5]

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    m1, m2 = valid(a), valid(b)
    s11, s22, s12 = valid(a * a) - m1 ** 2, valid(b * b) - m2 ** 2, valid(a * b) - m1 * m2
    cs = (2 * s12 + c2) / (s11 + s22 + c2)
    return float(((2 * m1 * m2 + c1) / (m1 ** 2 + m2 ** 2 + c1) * cs).mean()), float(cs.mean())


def _ms_ssim_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """msssim.m: imfilter(ones(2)/4, 'symmetric', 'same') keeps a pixel and its next neighbours (mode
    'reflect' is MATLAB's 'symmetric', origin -1 anchors the 2x2 box at its top-left), then 1:2:end."""
    weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
    cs_values = []
    for level in range(5):
        similarity, cs = _ssim_numpy(a, b)
        cs_values.append(cs)
        a = uniform_filter(a, size=2, mode="reflect", origin=-1)[::2, ::2]
        b = uniform_filter(b, size=2, mode="reflect", origin=-1)[::2, ::2]
    return float(np.prod(np.array(cs_values[:-1]) ** weights[:-1]) * similarity ** weights[-1])


@pytest.mark.parametrize("channels", ["y", "gray"])
def test_luma_metrics_equal_the_metrics_of_the_explicit_luma(channels):
    height, width = 171, 180  # odd height: the MATLAB-style halving of an odd size is exercised too
    assert ms_ssim_fits(min(height, width))
    reference = _smooth_colour_image(2, height, width)
    noise = np.random.default_rng(3).normal(0, 12, reference.shape)
    distorted = np.clip(reference + noise, 0, 255).round().astype(np.uint8)
    x, y = _tensor(distorted), _tensor(reference)
    luma_x, luma_y = _luma_numpy(distorted, channels), _luma_numpy(reference, channels)

    # The same metric on the Y image replicated into 3 channels, on the [0, 1] scale (data range 1).
    def replicated(luma):
        return torch.from_numpy(luma / 255)[None, None].expand(1, 3, height, width)

    for metric in (ssim, ms_ssim, psnr):
        ours = metric(x, y, channels=channels)
        assert ours.shape == (1,)
        assert ours.item() == pytest.approx(metric(replicated(luma_x), replicated(luma_y)).item(), abs=1e-6)
    # ... and against the formulas written out independently in numpy.
    assert ssim(x, y, channels=channels).item() == pytest.approx(_ssim_numpy(luma_x, luma_y)[0], abs=1e-6)
    assert ms_ssim(x, y, channels=channels).item() == pytest.approx(_ms_ssim_numpy(luma_x, luma_y), abs=1e-6)
    mse = ((luma_x - luma_y) ** 2).mean()
    assert psnr(x, y, channels=channels).item() == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-4)
    similarity = ssim(x, y, channels=channels).item()
    assert 0.2 < similarity < 0.95  # a discriminating case, not a trivial 0 or 1


def test_rgb_ssim_is_the_channel_mean_and_identity_is_one():
    reference = _smooth_colour_image(4, 64, 80)
    distorted = np.clip(reference + np.random.default_rng(5).normal(0, 20, reference.shape), 0, 255)
    x, y = _tensor(distorted.astype(np.uint8)), _tensor(reference)
    per_channel = [_ssim_numpy(distorted.astype(np.uint8)[..., c] / 255, reference[..., c] / 255, 1.0)[0]
                   for c in range(3)]
    assert ssim(x, y).item() == pytest.approx(np.mean(per_channel), abs=1e-6)
    for channels in ("rgb", "y", "gray"):
        assert ssim(y, y, channels=channels).item() == pytest.approx(1.0, abs=1e-12)
        assert torch.isinf(psnr(y, y, channels=channels)).all()


def test_bad_channels_and_sizes_are_rejected():
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="channels"):
        ssim(x, x, channels="Y")
    with pytest.raises(ValueError, match="MS-SSIM"):
        ms_ssim(x, x)
    with pytest.raises(ValueError, match="RGB"):
        ssim(x[:, :1], x[:, :1], channels="y")


# ---------------------------------------------------------------------------------------------------- (e)

WHEEL = os.environ.get("RLS_CALIBRATION_WHEEL")


@pytest.mark.skipif(not WHEEL, reason="set RLS_CALIBRATION_WHEEL to pyiqa-0.1.16-py3-none-any.whl "
                                      "(pip download pyiqa==0.1.16 --no-deps) to run the calibration")
def test_calibration_against_the_official_numbers():
    script = load_script("calibrate_metrics")
    report = script.compare(script.measure(script.read_pairs(wheel=Path(WHEEL))))
    for name, check in report["checks"].items():
        assert check["passed"], (name, check["max_abs_difference"], check["tolerance"], check["difference"])
    assert report["passed"]


def test_calibration_script_fails_on_a_missing_wheel_member(tmp_path, capsys):
    import zipfile

    fake = tmp_path / "fake.whl"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("pyiqa/__init__.py", "")
    script = load_script("calibrate_metrics")
    assert script.main(["--pyiqa-wheel", str(fake)]) == 2
    assert "ResultsCalibra/dist_dir/I03.bmp" in capsys.readouterr().err


def test_calibration_verdicts_use_the_tolerances():
    script = load_script("calibrate_metrics")
    ours = {}
    for metric, channels, reference, *_ in script.CHECKS.values():
        key = metric if channels is None else f"{metric}_{channels}"
        ours[key] = dict(zip(script.IMAGES, reference))
    assert script.compare(ours)["passed"]
    ours["niqe"] = {name: value + 0.5 for name, value in ours["niqe"].items()}
    report = script.compare(ours)
    assert not report["passed"] and not report["checks"]["niqe"]["passed"]
    assert report["checks"]["niqe"]["max_abs_difference"] == pytest.approx(0.5)
    assert script.compare(ours, {"niqe": 0.6})["passed"]
