"""Full-reference fidelity metrics per image pair (paper sec. 4, Tables 1-5): PSNR, SSIM / MS-SSIM, LR consistency.

Images are float tensors ``[N, C, H, W]`` in [0, 1].
"""
from __future__ import annotations

import torch
from torchmetrics.functional.image import (multiscale_structural_similarity_index_measure,
                                           peak_signal_noise_ratio, structural_similarity_index_measure)

from ..degradations import downsample_bicubic

SSIM_KERNEL = 11
MS_SSIM_SCALES = 5


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image: 10 log10(1 / MSE), data range 1."""
    return peak_signal_noise_ratio(prediction, target, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ms_ssim_fits(size: int) -> bool:
    """MS-SSIM downsamples 4 times by 2 and needs the 11-pixel window at the coarsest scale."""
    return size > (SSIM_KERNEL - 1) * 2 ** (MS_SSIM_SCALES - 1)


def structural_similarity(prediction: torch.Tensor, target: torch.Tensor) -> tuple[str, torch.Tensor]:
    """Per image: ``("MS-SSIM", values)`` when the images are large enough, else ``("SSIM", values)``."""
    if ms_ssim_fits(min(prediction.shape[-2:])):
        return "MS-SSIM", multiscale_structural_similarity_index_measure(prediction, target, data_range=1.0,
                                                                         reduction="none")
    return "SSIM", structural_similarity_index_measure(prediction, target, data_range=1.0, reduction="none")


def lr_consistency(prediction: torch.Tensor, low_res: torch.Tensor) -> torch.Tensor:
    """Per image: mean |D(x) - y| (x super-resolved, y the LR input, D the bicubic degradation)."""
    factor = prediction.shape[-1] // low_res.shape[-1]
    return (downsample_bicubic(prediction * 2 - 1, factor) - (low_res * 2 - 1)).abs().flatten(1).mean(1) / 2
