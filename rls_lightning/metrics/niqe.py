"""NIQE, the "completely blind" naturalness metric of the paper's tables (lower is more natural).

Mittal, Soundararajan, Bovik, "Making a 'completely blind' image quality analyzer", IEEE Signal Processing
Letters 20(3), 2013. Section numbers and equations below refer to that paper.

A multivariate Gaussian (MVG) is fitted to 36 natural-scene-statistics features of the 96x96 patches of a
pristine image corpus (sec. III-D); an image's quality is the distance between that model and the MVG of its
own patch features (sec. IV, eq. 10).

Numbers are meant to match the authors' MATLAB release (``niqe_release``: ``computequality.m``,
``estimatemodelparam.m``, ``computefeature.m``, ``estimateaggdparam.m``) so that its ``modelparameters.mat``
can be used. Where the release and the paper's text differ, the release is followed:

* the MSCN coefficients (eq. 2 shape/spread features) are fitted with the asymmetric estimator too, and the
  spread feature is the mean of the left and right *scale* parameters ``(beta_l + beta_r) / 2``, not a
  variance;
* the pair-product features are the AGGD shape, mean (eq. 8) and the left/right *scale* parameters
  ``beta_l, beta_r`` of eq. 7, not variances;
* the shape is picked from the grid 0.2:0.001:10, as the release does, rather than solved for exactly.

The release's pristine model ships with the package (``data/niqe_pris_params.npz``, :data:`DEFAULT_PARAMS_PATH`;
origin, licence and checksum in ``data/NIQE_PARAMS_LICENSE.txt``), so ``NIQE()`` / :meth:`NIQE.default` score
images without any file from the user. On the five calibration pairs of pyiqa (``scripts/calibrate_metrics.py``)
the scores agree with the official MATLAB ones to within about 0.07.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import gamma

__all__ = ["NIQE", "DEFAULT_PARAMS_PATH", "DEFAULT_PARAMS_SHA256", "niqe_features", "fit_pristine_model", "niqe_distance", "mscn_coefficients",
           "estimate_aggd_params"]

# The authors' pristine model (modelparameters.mat of the MATLAB release) as redistributed by BasicSR 1.4.2
# (basicsr/metrics/niqe_pris_params.npz, Apache-2.0): see data/NIQE_PARAMS_LICENSE.txt.
DEFAULT_PARAMS_PATH = Path(__file__).resolve().parent / "data" / "niqe_pris_params.npz"
DEFAULT_PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
# Key names of the parameter files NIQE.from_file reads: (mean, covariance).
_MAT_KEYS = ("mu_prisparam", "cov_prisparam")  # the release's modelparameters.mat
_NPZ_KEYS = (("mean", "cov"),  # ours, e.g. saved from fit_pristine_model
             ("mu_pris_param", "cov_pris_param"))  # BasicSR's niqe_pris_params.npz (the shipped default)

FEATURES_PER_SCALE = 18
NUM_SCALES = 2
NUM_FEATURES = FEATURES_PER_SCALE * NUM_SCALES

# Sec. III-A: "w is a 2D circularly-symmetric Gaussian weighting function sampled out to 3 standard deviations
# (K = L = 3)"; the release uses fspecial('gaussian', 7, 7/6).
_WINDOW_RADIUS = 3
_WINDOW_SIGMA = 7.0 / 6.0
# Eq. 1's constant C: keeps the division stable where the local contrast vanishes (flat sky, saturation).
_STABILITY_C = 1.0
# MATLAB rgb2gray's weights (first row of the inverse NTSC transform), i.e. 0.2989, 0.5870, 0.1140 rounded.
_RGB_TO_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
# Pair products of eq. 6: horizontal, vertical, main-diagonal and anti-diagonal neighbours (circshift offsets).
_PAIR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))

# The release's shape grid 0.2:0.001:10; integers over 1000 avoid the drift of a float arange.
_SHAPE_GRID = np.arange(200, 10001) / 1000.0
# rho(alpha) = Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)): increases monotonically from 0 to 3/4, so the grid
# point closest to a measured ratio can be found by bisection instead of scanning all 9801 entries.
_RATIO_GRID = gamma(2.0 / _SHAPE_GRID) ** 2 / (gamma(1.0 / _SHAPE_GRID) * gamma(3.0 / _SHAPE_GRID))


def _gaussian_window_1d() -> np.ndarray:
    offsets = np.arange(-_WINDOW_RADIUS, _WINDOW_RADIUS + 1, dtype=np.float64)
    window = np.exp(-offsets ** 2 / (2.0 * _WINDOW_SIGMA ** 2))
    # fspecial's normalised 2-D Gaussian is the outer product of this normalised 1-D one: filter separably.
    return window / window.sum()


def _local_average(image: np.ndarray) -> np.ndarray:
    window = _gaussian_window_1d()
    # mode="nearest" is imfilter's 'replicate' border of the release.
    smoothed = correlate1d(image, window, axis=0, mode="nearest")
    return correlate1d(smoothed, window, axis=1, mode="nearest")


def mscn_coefficients(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients (sec. III-A, eqs. 1-3) and the local deviation sigma.

    Returns ``(mscn, sigma)`` with ``mscn = (I - mu) / (sigma + C)``, ``C = 1``, where ``mu`` and ``sigma`` are
    the Gaussian-weighted local mean and standard deviation of eqs. 2-3 (7x7 window, std 7/6, replicated
    borders). ``sigma`` is also the per-pixel sharpness used to select pristine patches (sec. III-C).
    """
    image = np.asarray(gray, dtype=np.float64)
    mu = _local_average(image)
    # abs: E[I^2] - mu^2 can come out slightly negative in flat regions through cancellation.
    sigma = np.sqrt(np.abs(_local_average(image * image) - mu * mu))
    return (image - mu) / (sigma + _STABILITY_C), sigma


def estimate_aggd_params(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching fit of the asymmetric generalized Gaussian of eq. 7, along the last axis.

    Returns ``(alpha, beta_l, beta_r)``: the shape and the left/right scale parameters, so that
    ``f(x) = alpha / ((beta_l + beta_r) Gamma(1/alpha)) exp(-(-x/beta_l)^alpha)`` for ``x < 0`` and likewise
    with ``beta_r`` for ``x >= 0``. A symmetric GGD (eq. 4, used for the MSCN coefficients) is the special
    case ``beta_l = beta_r``, where the fit reduces to the GGD moment matching of Sharifi & Leon-Garcia.

    The estimator is the one of Lasmar et al. used by the release: one-sided standard deviations
    ``sigma_l, sigma_r``, ``gamma_hat = sigma_l / sigma_r``, ``r_hat = E|x|^2 / E[x^2]``, the normalised ratio
    ``R_hat = r_hat (gamma_hat^3 + 1)(gamma_hat + 1) / (gamma_hat^2 + 1)^2``, and alpha the grid point in
    0.2:0.001:10 whose ``Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a))`` is closest to ``R_hat``. The scales are
    ``beta = sigma sqrt(Gamma(1/alpha) / Gamma(3/alpha))``. A side without samples gives NaN there.
    """
    x = np.asarray(samples, dtype=np.float64)
    negative, positive = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(np.sum(np.where(negative, x * x, 0.0), axis=-1) / np.sum(negative, axis=-1))
        right_std = np.sqrt(np.sum(np.where(positive, x * x, 0.0), axis=-1) / np.sum(positive, axis=-1))
        gamma_hat = left_std / right_std
        r_hat = np.mean(np.abs(x), axis=-1) ** 2 / np.mean(x * x, axis=-1)
        r_hat_norm = r_hat * (gamma_hat ** 3 + 1) * (gamma_hat + 1) / (gamma_hat ** 2 + 1) ** 2
    alpha = _nearest_shape(r_hat_norm)
    with np.errstate(invalid="ignore"):
        to_scale = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, left_std * to_scale, right_std * to_scale


def _nearest_shape(ratio: np.ndarray) -> np.ndarray:
    ratio = np.asarray(ratio, dtype=np.float64)
    upper = np.clip(np.searchsorted(_RATIO_GRID, ratio), 1, len(_RATIO_GRID) - 1)
    lower = upper - 1
    # Ties go to the smaller shape, as MATLAB's min returns the first minimiser.
    pick_lower = np.abs(ratio - _RATIO_GRID[lower]) <= np.abs(_RATIO_GRID[upper] - ratio)
    alpha = _SHAPE_GRID[np.where(pick_lower, lower, upper)]
    # Unlike the release (whose min over NaNs returns the first grid point, 0.2) a degenerate patch gets NaN
    # everywhere, so that it drops out of every statistic instead of biasing the shape's mean.
    return np.where(np.isnan(ratio), np.nan, alpha)


def _to_gray(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return array.astype(np.float64)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"NIQE expects an HxW grayscale or HxWx3 RGB image, got shape {array.shape}")
    gray = array.astype(np.float64) @ _RGB_TO_GRAY
    if array.dtype == np.uint8:
        # rgb2gray returns uint8 for uint8 input: the release scores the rounded gray levels.
        gray = np.clip(np.floor(gray + 0.5), 0, 255)
    return gray


def _check_patch_size(patch_size: int) -> None:
    if patch_size < 2 or patch_size % 2:
        raise ValueError(f"patch_size must be an even integer >= 2 (the second scale uses half-size patches), "
                         f"got {patch_size}")


def _cubic(x: np.ndarray) -> np.ndarray:
    # Keys' cubic convolution kernel with a = -0.5, the one of MATLAB's imresize 'bicubic'.
    ax = np.abs(x)
    return ((1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1)
            + (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _imresize_matrix(in_length: int, scale: float) -> np.ndarray:
    """[out, in] weights of MATLAB imresize(..., scale, 'bicubic') along one axis (antialiasing on)."""
    out_length = int(np.ceil(in_length * scale))
    kernel_width = 4.0
    if scale < 1:
        # Antialiasing: the kernel is stretched by 1/scale so that it low-passes before decimation.
        def kernel(t):
            return scale * _cubic(scale * t)
        kernel_width /= scale
    else:
        kernel = _cubic
    centres = np.arange(1, out_length + 1) / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinates
    left = np.floor(centres - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(centres[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    # imresize mirrors out-of-range taps symmetrically, repeating the edge sample.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    source = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length))
    np.add.at(matrix, (np.repeat(np.arange(out_length), taps), source.ravel()), weights.ravel())
    return matrix


def _downsample_half(image: np.ndarray) -> np.ndarray:
    # imresize resizes the first dimension first when both scales are equal.
    rows = _imresize_matrix(image.shape[0], 0.5) @ image
    return rows @ _imresize_matrix(image.shape[1], 0.5).T


def _patches(image: np.ndarray, size: int) -> np.ndarray:
    rows, cols = image.shape[0] // size, image.shape[1] // size
    blocks = image[:rows * size, :cols * size].reshape(rows, size, cols, size)
    return blocks.transpose(0, 2, 1, 3).reshape(rows * cols, size, size)


def _patch_features(coefficients: np.ndarray, size: int) -> np.ndarray:
    """The 18 features of sec. III-B of every ``size`` x ``size`` patch of one scale, [patches, 18]."""
    patches = _patches(coefficients, size)
    flat = patches.reshape(len(patches), -1)
    alpha, beta_l, beta_r = estimate_aggd_params(flat)
    columns = [alpha, (beta_l + beta_r) / 2]
    for shift in _PAIR_SHIFTS:
        # circshift within the patch, as the release's blkproc callback does (pairs wrap around the patch).
        products = (patches * np.roll(patches, shift, axis=(1, 2))).reshape(len(patches), -1)
        alpha, beta_l, beta_r = estimate_aggd_params(products)
        with np.errstate(invalid="ignore"):
            mean = (beta_r - beta_l) * gamma(2.0 / alpha) / gamma(1.0 / alpha)  # eq. 8
        columns += [alpha, mean, beta_l, beta_r]
    return np.stack(columns, axis=1)


def _features_and_sharpness(gray: np.ndarray, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    _check_patch_size(patch_size)
    image = np.asarray(gray, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    height, width = image.shape
    if height < patch_size or width < patch_size:
        raise ValueError(f"image of {height}x{width} pixels is smaller than one {patch_size}x{patch_size} patch")
    image = image[:height // patch_size * patch_size, :width // patch_size * patch_size]
    per_scale = []
    sharpness = None
    for scale in range(1, NUM_SCALES + 1):
        coefficients, sigma = mscn_coefficients(image)
        per_scale.append(_patch_features(coefficients, patch_size // scale))
        if scale == 1:
            # Sec. III-C: a patch's sharpness is its average local deviation sigma at the finest scale.
            sharpness = _patches(sigma, patch_size).mean(axis=(1, 2))
        if scale < NUM_SCALES:
            image = _downsample_half(image)
    return np.concatenate(per_scale, axis=1), sharpness


def niqe_features(gray: np.ndarray, patch_size: int = 96) -> np.ndarray:
    """The 36 NIQE features of every patch of a grayscale image, [num_patches, 36] (sec. III-B, III-E).

    The image (values in [0, 255]) is cropped to a multiple of ``patch_size``; columns 0-17 come from
    ``patch_size`` patches of the image, columns 18-35 from the co-located ``patch_size / 2`` patches of the
    image downsampled by 2 (MATLAB bicubic imresize with antialiasing). Per scale: MSCN shape and mean of the
    left/right scales, then for each of the horizontal, vertical and two diagonal pair products (eq. 6) the
    AGGD shape, mean (eq. 8), left scale and right scale (eq. 7). Patches are in row-major order.
    """
    return _features_and_sharpness(gray, patch_size)[0]


def fit_pristine_model(images: list[np.ndarray], patch_size: int = 96,
                       sharpness_threshold: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """Fit the pristine MVG model (sec. III-C, III-D) to natural undistorted images: ``(mean [36], cov [36, 36])``.

    Of each image only the patches whose sharpness exceeds ``sharpness_threshold`` times the image's largest
    patch sharpness are kept (the paper's p = 0.75), since in-focus regions carry the natural statistics.
    Patches with an undefined feature (a side of a distribution without samples) are left out, where the
    release would let the NaN spread into the model. The covariance is unbiased (normalised by n - 1).
    """
    kept = []
    for index, image in enumerate(images):
        try:
            features, sharpness = _features_and_sharpness(_to_gray(image), patch_size)
        except ValueError as err:
            raise ValueError(f"pristine image {index}: {err}") from None
        kept.append(features[sharpness > sharpness_threshold * sharpness.max()])
    if not kept:
        raise ValueError("fit_pristine_model needs at least one image")
    features = np.concatenate(kept)
    features = features[~np.isnan(features).any(axis=1)]
    if len(features) < 2:
        raise ValueError(f"only {len(features)} usable sharp patch(es): a covariance needs at least 2")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _pinv(matrix: np.ndarray) -> np.ndarray:
    # MATLAB pinv's default tolerance max(size) * norm * eps: the same singular values are discarded.
    u, s, vt = np.linalg.svd(matrix)
    keep = s > max(matrix.shape) * np.finfo(np.float64).eps * (s[0] if s.size else 0.0)
    return (vt[keep].T / s[keep]) @ u[:, keep].T


def niqe_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """Eq. 10: ``sqrt((nu1 - nu2)^T ((Sigma1 + Sigma2) / 2)^+ (nu1 - nu2))``, with a pseudo-inverse.

    The pseudo-inverse (as in the release) keeps the distance defined when the pooled covariance is singular,
    e.g. for an image with fewer patches than features.
    """
    diff = np.asarray(mean1, dtype=np.float64) - np.asarray(mean2, dtype=np.float64)
    pooled = (np.asarray(cov1, dtype=np.float64) + np.asarray(cov2, dtype=np.float64)) / 2
    squared = float(diff @ _pinv(pooled) @ diff)
    # The quadratic form of a PSD matrix can round to a tiny negative number.
    return float(np.sqrt(max(squared, 0.0)))


def _missing_keys(path: Path, contents: dict, wanted: str) -> ValueError:
    found = sorted(key for key in contents if not key.startswith("__"))
    return ValueError(f"{path}: missing NIQE parameter(s) {wanted} (found: {', '.join(found) or 'nothing'})")


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as archive:
        contents = {name: archive[name] for name in archive.files}
    for keys in _NPZ_KEYS:
        if all(key in contents for key in keys):
            return contents[keys[0]], contents[keys[1]]
    raise _missing_keys(path, contents, " or ".join(", ".join(keys) for keys in _NPZ_KEYS))


def _load_params(path: Path) -> tuple[np.ndarray, np.ndarray]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix != ".mat":
        raise ValueError(f"{path}: NIQE parameters must be a MATLAB .mat (mu_prisparam, cov_prisparam) "
                         "or an .npz (mean, cov or mu_pris_param, cov_pris_param)")
    from scipy.io import loadmat

    contents = loadmat(path)
    missing = [key for key in _MAT_KEYS if key not in contents]
    if missing:
        raise _missing_keys(path, contents, ", ".join(missing))
    return contents[_MAT_KEYS[0]], contents[_MAT_KEYS[1]]


class NIQE:
    """NIQE scorer holding a pristine MVG model (eq. 10's nu_1, Sigma_1); lower scores are more natural.

    ``NIQE()`` without arguments uses the authors' model shipped with the package (:meth:`default`).
    """

    def __init__(self, pristine_mean: np.ndarray | None = None, pristine_cov: np.ndarray | None = None,
                 patch_size: int = 96) -> None:
        _check_patch_size(patch_size)
        if (pristine_mean is None) != (pristine_cov is None):
            raise ValueError("give both pristine_mean and pristine_cov, or neither (the shipped default model)")
        if pristine_mean is None:
            pristine_mean, pristine_cov = _load_npz(DEFAULT_PARAMS_PATH)
        mean = np.asarray(pristine_mean, dtype=np.float64).ravel()
        cov = np.asarray(pristine_cov, dtype=np.float64)
        if mean.shape != (NUM_FEATURES,) or cov.shape != (NUM_FEATURES, NUM_FEATURES):
            raise ValueError(f"a NIQE model needs a mean of {NUM_FEATURES} values and a {NUM_FEATURES}x"
                             f"{NUM_FEATURES} covariance, got {mean.shape} and {cov.shape}")
        self.pristine_mean = mean
        self.pristine_cov = cov
        self.patch_size = patch_size

    @classmethod
    def default(cls, patch_size: int = 96) -> "NIQE":
        """The authors' pristine model (``modelparameters.mat`` of the MATLAB release), shipped with the package
        at :data:`DEFAULT_PARAMS_PATH` (BasicSR 1.4.2's ``niqe_pris_params.npz``, Apache-2.0)."""
        return cls.from_file(DEFAULT_PARAMS_PATH, patch_size=patch_size)

    @classmethod
    def from_file(cls, path: str | Path, patch_size: int = 96) -> "NIQE":
        """Load a pristine model: the release's ``modelparameters.mat`` (``mu_prisparam``, ``cov_prisparam``),
        or an ``.npz`` with ``mean`` and ``cov`` (e.g. saved from :func:`fit_pristine_model`) or with BasicSR's
        ``mu_pris_param`` and ``cov_pris_param`` (the format of the shipped :data:`DEFAULT_PARAMS_PATH`)."""
        path = Path(path)
        mean, cov = _load_params(path)
        try:
            return cls(mean, cov, patch_size=patch_size)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def score(self, image: np.ndarray) -> float:
        """NIQE of one image (sec. IV): HxW grayscale or HxWx3 RGB, uint8 or float in [0, 255].

        RGB is converted with MATLAB rgb2gray (rounded to integers for uint8 input, as the release sees it).
        The image must be at least ``2 * patch_size`` on each side, so that its own covariance rests on at
        least 2x2 patches. Returns NaN when no patch has defined features (e.g. a perfectly flat image),
        as the release does.
        """
        gray = _to_gray(image)
        height, width = gray.shape
        minimum = 2 * self.patch_size
        if height < minimum or width < minimum:
            raise ValueError(f"NIQE needs images of at least {minimum}x{minimum} pixels (2x2 patches of "
                             f"{self.patch_size}), got {height}x{width}")
        features = niqe_features(gray, self.patch_size)
        complete = features[~np.isnan(features).any(axis=1)]
        if len(complete) < 2:
            return float("nan")
        # As the release: nanmean per feature, but nancov over the complete patches only.
        mean = np.nanmean(features, axis=0)
        return niqe_distance(self.pristine_mean, self.pristine_cov, mean, np.cov(complete, rowvar=False))
