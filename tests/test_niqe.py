"""NIQE (Mittal et al. 2013): estimators, features against a slow independent reference, eq. 10, behaviour."""
import math
import re

import numpy as np
import pytest
from scipy.io import savemat
from scipy.ndimage import gaussian_filter
from scipy.stats import gennorm

from rls_lightning.metrics.niqe import (NIQE, estimate_aggd_params, fit_pristine_model, niqe_distance,
                                        niqe_features)

MATLAB_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])


# ---------------------------------------------------------------- slow reference, written from the MATLAB release
REF_SHAPES = np.linspace(0.2, 10.0, 9801)
REF_RATIOS = np.array([math.exp(2 * math.lgamma(2 / a) - math.lgamma(1 / a) - math.lgamma(3 / a))
                       for a in REF_SHAPES])


def ref_aggd(values):
    v = values.ravel()
    left, right = math.sqrt(np.mean(v[v < 0] ** 2)), math.sqrt(np.mean(v[v > 0] ** 2))
    g = left / right
    r = np.mean(np.abs(v)) ** 2 / np.mean(v ** 2)
    r_norm = r * (g ** 3 + 1) * (g + 1) / (g ** 2 + 1) ** 2
    alpha = REF_SHAPES[np.argmin((REF_RATIOS - r_norm) ** 2)]  # brute force over the whole grid
    to_scale = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, left * to_scale, right * to_scale


def ref_mscn(image):
    sigma_w = 7 / 6
    blur = lambda a: gaussian_filter(a, sigma_w, mode="nearest", truncate=3 / sigma_w)  # noqa: E731
    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image * image) - mu * mu))
    return (image - mu) / (sigma + 1), sigma


def keys_cubic(t):
    t = abs(t)
    if t <= 1:
        return 1.5 * t ** 3 - 2.5 * t ** 2 + 1
    if t <= 2:
        return -0.5 * t ** 3 + 2.5 * t ** 2 - 4 * t + 2
    return 0.0


def ref_half(image):
    """MATLAB imresize(im, 0.5) (bicubic, antialiased): an 8-tap kernel at stride 2 over a mirrored border."""
    taps = np.array([0.5 * keys_cubic(0.5 * (3.5 - k)) for k in range(8)])

    def along_rows(a):
        padded = np.pad(a, ((3, 3), (0, 0)), mode="symmetric")
        return np.stack([taps @ padded[2 * i:2 * i + 8] for i in range(a.shape[0] // 2)])

    return along_rows(along_rows(image).T).T


def ref_patch_features(patch):
    n = patch.shape[0]
    alpha, bl, br = ref_aggd(patch)
    feats = [alpha, (bl + br) / 2]
    for dy, dx in [(0, 1), (1, 0), (1, 1), (1, -1)]:
        neighbour = patch[np.ix_((np.arange(n) - dy) % n, (np.arange(n) - dx) % n)]
        alpha, bl, br = ref_aggd(patch * neighbour)
        feats += [alpha, (br - bl) * math.gamma(2 / alpha) / math.gamma(1 / alpha), bl, br]
    return feats


def ref_features_and_sharpness(gray, ps=96):
    rows, cols = gray.shape[0] // ps, gray.shape[1] // ps
    image = gray[:rows * ps, :cols * ps].astype(float)
    out = [[] for _ in range(rows * cols)]
    sharpness = []
    for scale in (1, 2):
        coeffs, sigma = ref_mscn(image)
        size = ps // scale
        for r in range(rows):
            for c in range(cols):
                out[r * cols + c] += ref_patch_features(coeffs[r * size:(r + 1) * size, c * size:(c + 1) * size])
                if scale == 1:
                    sharpness.append(sigma[r * size:(r + 1) * size, c * size:(c + 1) * size].mean())
        image = ref_half(image)
    return np.array(out), np.array(sharpness)


# ---------------------------------------------------------------- helpers
def smooth_random_image(rng, shape, sigma=2.0):
    img = gaussian_filter(rng.normal(size=shape), sigma)
    return 255 * (img - img.min()) / np.ptp(img)


def pink_noise_image(rng, size=384):
    """Gaussian field with a 1/f amplitude spectrum: the second-order statistics of natural images."""
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1
    spectrum = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
    spectrum[0, 0] = 0
    img = np.fft.irfft2(spectrum, s=(size, size))
    return np.clip(128 + 40 * (img - img.mean()) / img.std(), 0, 255)


def sample_aggd(rng, alpha, beta_l, beta_r, n):
    left = rng.random(n) < beta_l / (beta_l + beta_r)  # each side's mass is proportional to its scale
    magnitude = np.abs(gennorm.rvs(alpha, size=n, random_state=rng))
    return np.where(left, -beta_l * magnitude, beta_r * magnitude)


@pytest.fixture(scope="module")
def pink_model():
    rng = np.random.default_rng(0)
    return fit_pristine_model([pink_noise_image(rng) for _ in range(8)])


# ---------------------------------------------------------------- parameter estimation
@pytest.mark.parametrize("alpha,scale", [(0.6, 0.4), (1.0, 1.0), (2.0, 3.0), (3.5, 1.5)])
def test_ggd_fit_recovers_gennorm_parameters(alpha, scale):
    x = gennorm.rvs(alpha, scale=scale, size=400_000, random_state=np.random.default_rng(1))
    a, bl, br = estimate_aggd_params(x)
    assert a == pytest.approx(alpha, rel=0.03)
    assert bl == pytest.approx(scale, rel=0.02) and br == pytest.approx(scale, rel=0.02)


@pytest.mark.parametrize("alpha,beta_l,beta_r", [(0.8, 0.5, 2.0), (1.5, 1.0, 0.3), (2.5, 2.0, 2.6)])
def test_aggd_fit_recovers_asymmetric_parameters(alpha, beta_l, beta_r):
    rng = np.random.default_rng(2)
    x = sample_aggd(rng, alpha, beta_l, beta_r, 400_000)
    a, bl, br = estimate_aggd_params(x)
    assert a == pytest.approx(alpha, rel=0.03)
    assert bl == pytest.approx(beta_l, rel=0.02) and br == pytest.approx(beta_r, rel=0.02)
    # eq. 8 on the fitted scales is the distribution's mean
    eta = (br - bl) * math.gamma(2 / a) / math.gamma(1 / a)
    assert eta == pytest.approx(x.mean(), abs=0.01 * (beta_l + beta_r))


def test_aggd_fit_is_vectorised_and_marks_missing_sides():
    rng = np.random.default_rng(3)
    batch = np.stack([sample_aggd(rng, 1.2, 1.0, 0.5, 5000), rng.normal(size=5000), np.abs(rng.normal(size=5000))])
    a, bl, br = estimate_aggd_params(batch)
    for i in range(2):
        np.testing.assert_allclose([a[i], bl[i], br[i]], ref_aggd(batch[i]), rtol=1e-12)
    # no negative samples: the asymmetry ratio is undefined, so the whole fit is NaN (the patch is dropped)
    assert np.isnan(a[2]) and np.isnan(bl[2]) and np.isnan(br[2])


# ---------------------------------------------------------------- features against the slow reference
def test_features_match_slow_reference():
    rng = np.random.default_rng(4)
    image = smooth_random_image(rng, (290, 200)) + rng.normal(0, 2, (290, 200))  # cropped to 288x192
    features = niqe_features(image)
    expected, _ = ref_features_and_sharpness(image)
    assert features.shape == (6, 36)
    np.testing.assert_allclose(features, expected, rtol=1e-8, atol=1e-10)


def test_pristine_fit_keeps_only_sharp_patches_like_reference():
    rng = np.random.default_rng(5)
    images = []
    for _ in range(2):
        img = smooth_random_image(rng, (288, 288), sigma=1.5)
        img[:, :96] = 128 + 0.2 * (img[:, :96] - 128)  # a low-contrast strip: its patches are not "sharp"
        images.append(img)
    mean, cov = fit_pristine_model(images)
    rows = []
    for img in images:
        feats, sharp = ref_features_and_sharpness(img)
        keep = sharp > 0.75 * sharp.max()
        assert 0 < keep.sum() < len(keep)  # the selection really removes some patches
        rows.append(feats[keep])
    rows = np.concatenate(rows)
    np.testing.assert_allclose(mean, rows.mean(axis=0), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, np.cov(rows, rowvar=False), rtol=1e-7, atol=1e-10)


# ---------------------------------------------------------------- eq. 10
def test_distance_matches_direct_formula():
    rng = np.random.default_rng(6)
    m1, m2 = rng.normal(size=36), rng.normal(size=36)
    a, b = rng.normal(size=(36, 36)), rng.normal(size=(36, 36))
    c1, c2 = a @ a.T / 36 + np.eye(36), b @ b.T / 36 + 0.5 * np.eye(36)
    d = m1 - m2
    assert niqe_distance(m1, c1, m2, c2) == pytest.approx(math.sqrt(d @ np.linalg.solve((c1 + c2) / 2, d)),
                                                          rel=1e-10)
    # singular pooled covariance: the pseudo-inverse ignores directions without variance
    basis = rng.normal(size=(36, 5))
    singular = basis @ basis.T
    inside = basis @ rng.normal(size=5)
    outside = np.linalg.svd(basis)[0][:, -1]
    expected = math.sqrt(inside @ np.linalg.pinv(singular) @ inside)
    assert niqe_distance(inside, singular, np.zeros(36), singular) == pytest.approx(expected, rel=1e-8)
    assert niqe_distance(inside + 3 * outside, singular, np.zeros(36), singular) == pytest.approx(expected, rel=1e-8)


def test_score_is_distance_between_the_two_gaussians(pink_model):
    image = pink_noise_image(np.random.default_rng(7))
    feats = niqe_features(image)
    mean, cov = pink_model
    d = mean - feats.mean(axis=0)
    direct = math.sqrt(d @ np.linalg.pinv((cov + np.cov(feats, rowvar=False)) / 2) @ d)
    assert NIQE(mean, cov).score(image) == pytest.approx(direct, rel=1e-8)


# ---------------------------------------------------------------- behaviour
def test_blur_and_noise_raise_niqe(pink_model):
    niqe = NIQE(*pink_model)
    rng = np.random.default_rng(8)
    sharp = pink_noise_image(rng)
    clean = niqe.score(sharp)
    blurred = niqe.score(gaussian_filter(sharp, 2))
    noisy = niqe.score(np.clip(sharp + rng.normal(0, 25, sharp.shape), 0, 255))
    assert clean < blurred and clean < noisy
    assert clean < 0.5 * min(blurred, noisy)


def test_rgb_uses_rounded_matlab_gray(pink_model):
    niqe = NIQE(*pink_model)
    rng = np.random.default_rng(9)
    gray = np.round(pink_noise_image(rng)).astype(np.uint8)
    assert niqe.score(np.repeat(gray[..., None], 3, axis=2)) == pytest.approx(niqe.score(gray), rel=1e-12)
    rgb = np.stack([gray, np.roll(gray, 7, 0), np.roll(gray, 11, 1)], axis=2)
    expected = niqe.score(np.floor(rgb.astype(float) @ MATLAB_GRAY + 0.5))
    assert niqe.score(rgb) == pytest.approx(expected, rel=1e-12)


def test_parameter_files_round_trip(tmp_path, pink_model):
    mean, cov = pink_model
    image = pink_noise_image(np.random.default_rng(10))
    expected = NIQE(mean, cov).score(image)
    savemat(tmp_path / "modelparameters.mat", {"mu_prisparam": mean[None, :], "cov_prisparam": cov})
    np.savez(tmp_path / "model.npz", mean=mean, cov=cov)
    assert NIQE.from_file(tmp_path / "modelparameters.mat").score(image) == pytest.approx(expected, rel=1e-12)
    assert NIQE.from_file(str(tmp_path / "model.npz")).score(image) == pytest.approx(expected, rel=1e-12)


# ---------------------------------------------------------------- errors
def test_too_small_image_is_rejected(pink_model):
    niqe = NIQE(*pink_model)
    with pytest.raises(ValueError, match="150x400"):
        niqe.score(np.zeros((150, 400)))
    with pytest.raises(ValueError, match="192x191"):
        niqe.score(np.zeros((192, 191, 3), np.uint8))
    assert np.isfinite(niqe.score(pink_noise_image(np.random.default_rng(11), size=192)))


def test_wrong_parameter_file_names_the_file(tmp_path):
    bad = tmp_path / "not_niqe.npz"
    np.savez(bad, mu=np.zeros(36), sigma=np.eye(36))
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        NIQE.from_file(bad)
    bad_mat = tmp_path / "other.mat"
    savemat(bad_mat, {"mu_prisparam": np.zeros((1, 36))})
    with pytest.raises(ValueError, match="other.mat.*cov_prisparam"):
        NIQE.from_file(bad_mat)
    wrong_shape = tmp_path / "short.npz"
    np.savez(wrong_shape, mean=np.zeros(18), cov=np.eye(18))
    with pytest.raises(ValueError, match="short.npz"):
        NIQE.from_file(wrong_shape)
