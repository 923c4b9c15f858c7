"""Fixed FIR resampling used by StyleGAN2 (Karras et al. 2020, section 2 and appendix B; stylegan2-ada-pytorch
``torch_utils/ops/upfirdn2d.py``, rosinality ``model.py`` ``Upsample`` / ``Blur``).

Both official implementations use the separable binomial filter ``[1, 3, 3, 1]``. It is not learned, so it is
rebuilt here rather than read from checkpoints.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BINOMIAL_TAPS = (1.0, 3.0, 3.0, 1.0)


def binomial_kernel(gain: float = 1.0, device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """2-D kernel ``outer([1,3,3,1], [1,3,3,1]) / 64 * gain`` of shape ``[4, 4]``."""
    taps = torch.tensor(BINOMIAL_TAPS, device=device, dtype=dtype)
    kernel = torch.outer(taps, taps)
    return kernel * (gain / kernel.sum())


def fir_filter2d(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """Depthwise FIR filtering of ``x`` ``[N, C, H, W]`` after zero padding ``pad = (before, after)`` on both axes.

    The kernel is symmetric, so correlation and convolution coincide.
    """
    channels = x.shape[1]
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = kernel.to(x.dtype)[None, None].expand(channels, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=channels)


def upsample2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Doubles the resolution: zero insertion, padding ``(2, 1)`` and the FIR kernel with gain 4 (item 10).

    ``kernel`` must already carry the gain of 4 (``binomial_kernel(4.0)``).
    """
    n, c, h, w = x.shape
    # Zero insertion as a strided transposed convolution with a one-tap kernel would work too; an explicit
    # scatter keeps the autograd graph trivial and works for every dtype under autocast.
    up = x.new_zeros(n, c, h, 2, w, 2)
    up[:, :, :, 0, :, 0] = x
    up = up.reshape(n, c, 2 * h, 2 * w)
    return fir_filter2d(up, kernel, pad=(2, 1))
