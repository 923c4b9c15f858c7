"""PULSE's Gaussianization of W (Menon et al. 2020), the baseline prior of the inversion and of the report.

PULSE undoes the mapping network's last activation with a LeakyReLU of negative slope 5 and standardises each
dimension with a mean and std estimated on samples of its own: ``(lrelu_5(w) - mean) / std``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..no_grad import no_grad

if TYPE_CHECKING:  # torch is imported at the first call: modules importing this one stay light
    import torch

PULSE_NEGATIVE_SLOPE = 5.0


def pulse_gaussianize(w: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """PULSE's map from W to its 'Gaussian' space: ``(lrelu_5(w) - mean) / std`` (diagonal whitening only)."""
    import torch.nn.functional as F

    return (F.leaky_relu(w, PULSE_NEGATIVE_SLOPE) - mean) / std


@no_grad
def pulse_statistics(mapping: torch.nn.Module, z_dim: int, num: int, seed: int,
                     device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean/std of ``lrelu_5(w)`` on their own samples (PULSE uses 1M; we default to 100k)."""
    import torch

    from .sampling import latent_statistics

    gaussianized = torch.nn.Sequential(mapping, torch.nn.LeakyReLU(PULSE_NEGATIVE_SLOPE))  # lrelu_5(mapping(z))
    return latent_statistics(gaussianized, z_dim, num, seed, device)
