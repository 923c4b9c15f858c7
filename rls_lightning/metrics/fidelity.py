"""Full-reference fidelity metrics per image pair (paper sec. 4, Tables 1-5): PSNR, SSIM / MS-SSIM, LR consistency.

Images are float tensors ``[N, C, H, W]`` in [0, 1] (``C = 3``, RGB, for the luminance channels).

``channels`` picks what is compared:

* ``"rgb"``: every channel, scores (or SSIM maps) averaged over the channels;
* ``"y"``: the luma Y of ITU-R BT.601 YCbCr in studio range, as MATLAB ``rgb2ycbcr`` computes it for images in
  [0, 1]: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (16..235), compared with a data range of 255 and not
  rounded. This is the super-resolution convention (BasicSR's ``calculate_psnr/ssim(test_y_channel=True)``);
* ``"gray"``: MATLAB ``rgb2gray`` of an 8-bit image, ``round(0.298936 R + 0.587043 G + 0.114021 B)`` on
  0..255 (full range, rounded to integers as ``rgb2gray`` returns uint8 for uint8 input), data range 255.
  This is what the official SSIM / MS-SSIM numbers that pyiqa calibrates against were computed on
  (chaofengc/IQA-PyTorch, ResultsCalibra/ResultsCalibra.md: "We use rgb2gray function as input of original
  SSIM / MS-SSIM matlab script").

SSIM and MS-SSIM follow Zhou Wang's MATLAB scripts rather than torchmetrics (see :func:`ssim`, :func:`ms_ssim`);
``scripts/calibrate_metrics.py`` measures them against the official numbers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..degradations import downsample_bicubic

__all__ = ["CHANNELS", "psnr", "ssim", "ms_ssim", "ms_ssim_fits", "to_luma",
           "lr_consistency"]

CHANNELS = ("rgb", "y", "gray")
SSIM_KERNEL = 11
SSIM_SIGMA = 1.5
MS_SSIM_SCALES = 5
# Wang, Simoncelli, Bovik 2003, sec. 3.2 (and msssim.m's default `weight`).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# SSIM's stabilising constants K1, K2 (Wang et al. 2004, eq. 7-9; ssim.m's default K).
_K1, _K2 = 0.01, 0.03
# MATLAB rgb2ycbcr's Y row for inputs in [0, 1] (BT.601, studio range 16..235), in 0..255 units.
_YCBCR_Y = (65.481, 128.553, 24.966)
_YCBCR_Y_OFFSET = 16.0
# MATLAB rgb2gray's weights (first row of the inverse of the NTSC YIQ transform), as in niqe.py.
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def _check_channels(channels: str) -> None:
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {', '.join(CHANNELS)}, got {channels!r}")


def to_luma(images: torch.Tensor, channels: str) -> torch.Tensor:
    """The luminance ``[N, 1, H, W]`` on the 0..255 scale of RGB images ``[N, 3, H, W]`` in [0, 1].

    ``"y"``: BT.601 studio-range Y (16..235, not rounded); ``"gray"``: MATLAB ``rgb2gray`` (0..255, rounded
    half away from zero, as MATLAB's uint8 conversion). Computed in float64.
    """
    if channels not in ("y", "gray"):
        raise ValueError(f"to_luma converts to 'y' or 'gray', got {channels!r}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"luminance channels need RGB images [N, 3, H, W], got shape {tuple(images.shape)}")
    rgb = images.to(torch.float64)
    if channels == "y":
        weights = torch.tensor(_YCBCR_Y, dtype=torch.float64, device=rgb.device)
        return (rgb * weights.view(1, 3, 1, 1)).sum(1, keepdim=True) + _YCBCR_Y_OFFSET
    weights = torch.tensor(_RGB2GRAY, dtype=torch.float64, device=rgb.device) * 255.0
    gray = (rgb * weights.view(1, 3, 1, 1)).sum(1, keepdim=True)
    return torch.floor(gray + 0.5).clamp(0.0, 255.0)


def _prepare(prediction: torch.Tensor, target: torch.Tensor, channels: str) -> tuple[torch.Tensor, torch.Tensor,
                                                                                    float]:
    """Both images as float64 and the data range they are on: [0, 1] for rgb, 0..255 for the luminances."""
    _check_channels(channels)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target differ in shape: {tuple(prediction.shape)} vs "
                         f"{tuple(target.shape)}")
    if channels == "rgb":
        return prediction.to(torch.float64), target.to(torch.float64), 1.0
    return to_luma(prediction, channels), to_luma(target, channels), 255.0


def psnr(prediction: torch.Tensor, target: torch.Tensor, channels: str = "rgb") -> torch.Tensor:
    """Per image: ``10 log10(peak^2 / MSE)``, the MSE taken over all pixels (and channels, for ``"rgb"``).

    ``"rgb"`` (peak 1) is what the official PSNR numbers of pyiqa's calibration are: scikit-image's
    ``peak_signal_noise_ratio`` on the 3 RGB channels (IQA-PyTorch, ResultsCalibra/ResultsCalibra.md, note 4);
    ours agree with them to the 2 decimals given. ``"y"`` / ``"gray"`` compare the luminance with peak 255.
    Identical images give ``inf``.
    """
    x, y, peak = _prepare(prediction, target, channels)
    mse = (x - y).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(peak ** 2 / mse)).to(torch.float32)


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D window (sampled at integer
    # offsets): filtering separably gives the same local statistics, much faster in float64.
    offsets = torch.arange(SSIM_KERNEL, dtype=dtype, device=device) - (SSIM_KERNEL - 1) / 2
    g = torch.exp(-offsets ** 2 / (2 * SSIM_SIGMA ** 2))
    return g / g.sum()


def _ssim_and_cs(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term per image (maps averaged over pixels and channels).

    Wang's ``ssim_index_new.m`` / ``ssim.m``: ``filter2(window, ., 'valid')`` local statistics (no padding,
    the map is ``H - 10`` by ``W - 10``), ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, no clipping of negative values.
    """
    channels = x.shape[1]
    window = _gaussian_window(x.dtype, x.device)
    rows = window.view(1, 1, SSIM_KERNEL, 1).expand(channels, 1, SSIM_KERNEL, 1)
    cols = window.view(1, 1, 1, SSIM_KERNEL).expand(channels, 1, 1, SSIM_KERNEL)
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2

    def local(t):  # filter2(window, t, 'valid')
        return F.conv2d(F.conv2d(t, rows, groups=channels), cols, groups=channels)

    mu_x, mu_y = local(x), local(y)
    sigma_xx = local(x * x) - mu_x ** 2
    sigma_yy = local(y * y) - mu_y ** 2
    sigma_xy = local(x * y) - mu_x * mu_y
    cs_map = (2 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    ssim_map = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1) * cs_map
    return ssim_map.flatten(1).mean(1), cs_map.flatten(1).mean(1)


def _check_ssim_size(x: torch.Tensor) -> None:
    if min(x.shape[-2:]) < SSIM_KERNEL:
        raise ValueError(f"SSIM needs images of at least {SSIM_KERNEL}x{SSIM_KERNEL} pixels, got "
                         f"{tuple(x.shape[-2:])}")


def ssim(prediction: torch.Tensor, target: torch.Tensor, channels: str = "rgb") -> torch.Tensor:
    """Per image: SSIM (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 13(4), 2004), float32 ``[N]``.

    As Wang's MATLAB ``ssim.m`` (https://ece.uwaterloo.ca/~z70wang/research/ssim/) with its defaults: 11x11
    Gaussian window of std 1.5, K = (0.01, 0.03), 'valid' filtering, the mean of the SSIM map; but without the
    script's automatic downsampling of images larger than 256 pixels (averaging by ``f = max(1, round(min(H, W)
    / 256))`` then decimating), as pyiqa's official SSIM numbers were computed (IQA-PyTorch,
    ResultsCalibra/ResultsCalibra.md, note 2) and as SR papers report it. With ``channels="gray"`` this
    reproduces the official ``ssim`` row of pyiqa's ResultsCalibra/results_official.csv to its 4 decimals.
    """
    x, y, data_range = _prepare(prediction, target, channels)
    _check_ssim_size(x)
    return _ssim_and_cs(x, y, data_range)[0].to(torch.float32)


def _halve(t: torch.Tensor) -> torch.Tensor:
    # msssim.m: imfilter(im, ones(2)/4, 'symmetric', 'same') then im(1:2:end, 1:2:end). The 2x2 filter's anchor
    # is its top-left tap, so even sizes give 2x2 block means; an odd last row/column is averaged with its
    # mirror image (i.e. itself): pad by replication, then average-pool.
    pad_h, pad_w = t.shape[-2] % 2, t.shape[-1] % 2
    if pad_h or pad_w:
        t = F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")
    return F.avg_pool2d(t, 2)


def ms_ssim_fits(size: int) -> bool:
    """MS-SSIM halves 4 times (rounding up) and needs the 11-pixel window at the coarsest scale."""
    return size > (SSIM_KERNEL - 1) * 2 ** (MS_SSIM_SCALES - 1)


def ms_ssim(prediction: torch.Tensor, target: torch.Tensor, channels: str = "rgb") -> torch.Tensor:
    """Per image: MS-SSIM (Wang, Simoncelli, Bovik, Asilomar 2003), float32 ``[N]``.

    As Wang's MATLAB ``msssim.m`` (https://ece.uwaterloo.ca/~z70wang/research/iwssim/msssim.zip, method
    'product'): 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); at each scale the SSIM
    statistics of :func:`ssim` (no extra downsampling), then a 2x2 mean filter with symmetric borders and
    decimation by 2; ``prod_{j<5} cs_j^{w_j} * ssim_5^{w_5}``. The images must satisfy :func:`ms_ssim_fits`.
    A negative mean contrast-structure term (anti-correlated images) gives NaN, where MATLAB would return a
    complex number.

    Calibration (``scripts/calibrate_metrics.py``): with ``channels="y"`` this reproduces, to 1e-4, the
    results of the MATLAB script on YCbCr input recorded by pyiqa (IQA-PyTorch commit 3f32343,
    ResultsCalibra/ms_ssim_org_result.txt); the later official ``ms_ssim`` row (rgb2gray input) is matched by
    ``channels="gray"`` to 1e-4 on three images but is up to 4.4e-3 higher on the two most distorted ones
    (pyiqa's own implementation differs from that row by as much).
    """
    x, y, data_range = _prepare(prediction, target, channels)
    if not ms_ssim_fits(min(x.shape[-2:])):
        raise ValueError(f"MS-SSIM needs images larger than {(SSIM_KERNEL - 1) * 2 ** (MS_SSIM_SCALES - 1)} "
                         f"pixels on each side, got {tuple(x.shape[-2:])}")
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=torch.float64, device=x.device)
    contrast_structure = []
    for scale in range(MS_SSIM_SCALES):
        similarity, cs = _ssim_and_cs(x, y, data_range)
        contrast_structure.append(cs)
        if scale < MS_SSIM_SCALES - 1:
            x, y = _halve(x), _halve(y)
    cs = torch.stack(contrast_structure[:-1], dim=1)
    value = (cs ** weights[:-1]).prod(1) * similarity ** weights[-1]
    return value.to(torch.float32)


def lr_consistency(prediction: torch.Tensor, low_res: torch.Tensor) -> torch.Tensor:
    """Per image: mean |D(x) - y| (x super-resolved, y the LR input, D the bicubic degradation)."""
    factor = prediction.shape[-1] // low_res.shape[-1]
    return (downsample_bicubic(prediction * 2 - 1, factor) - (low_res * 2 - 1)).abs().flatten(1).mean(1) / 2
