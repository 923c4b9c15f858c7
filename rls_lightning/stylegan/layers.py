"""StyleGAN2 building blocks: equalized-lr linear layers, modulated convolutions, ToRGB.

The math is StyleGAN2's (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
sec. 2.2, Eq. 1-3) as both official implementations write it, stylegan2-ada-pytorch ``training/networks.py`` and
rosinality's stylegan2-pytorch ``model.py``, which agree to float32 resolution (``tests/fixtures/`` holds a small
generator and images made by each). Parameter names and shapes are those of NVIDIA's ``G_ema.state_dict()`` so that
checkpoint conversion is a renaming.

Per-sample parameters: every parameter of the synthesis layers may carry one extra leading dimension of size N
(the batch), as ``torch.func.functional_call`` passes them for RLS+, where each image is rendered with its own tuned
weights. The modulated convolution builds a weight per sample anyway, so these ride on its grouped path.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .filters import binomial_kernel, fir_filter2d

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMODULATION_EPS = 1e-8


def scaled_lrelu(x: torch.Tensor, clamp: float | None = None) -> torch.Tensor:
    """``lrelu(x, 0.2) * sqrt(2)``, optionally clamped to ``[-clamp, clamp]`` after the gain
    (stylegan2-ada-pytorch ``torch_utils/ops/bias_act.py``: lrelu's gain sqrt(2), then ``clamp``; rosinality's
    ``FusedLeakyReLU`` has the same gain and no clamp)."""
    x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate (Karras et al. 2018, ProGAN sec. 4.1).

    ``y = x @ (W * lr / sqrt(in)).T + b * lr``, then optionally ``lrelu * sqrt(2)``. ``W`` is stored divided by
    ``lr`` and ``b`` is stored as is, exactly like NVIDIA's ``FullyConnectedLayer``.
    """

    def __init__(self, in_features: int, out_features: int, *, lr_multiplier: float = 1.0,
                 bias_init: float = 0.0, activation: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.ndim == 3:  # per-sample weights [N, out, in] and biases [N, out]
            x = torch.einsum("ni,noi->no", x, self.weight * self.weight_gain) + self.bias * self.bias_gain
        else:
            x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return scaled_lrelu(x) if self.activation else x


def full_precision_styles(affine: EqualizedLinear, w: torch.Tensor) -> torch.Tensor:
    """``affine(w)`` outside autocast: the styles scale whole weight tensors, so their rounding matters."""
    with torch.autocast(w.device.type, enabled=False):
        return affine(w.to(torch.promote_types(w.dtype, torch.float32)))


def _convolve(x: torch.Tensor, weight: torch.Tensor, up: bool) -> torch.Tensor:
    """3x3 (or 1x1) convolution of ``x [N, I, H, W]`` with ``weight [O, I, k, k]`` shared by the batch, or with
    ``[N, O, I, k, k]``, one per sample (a grouped convolution); ``up``: stride-2 transposed convolution of the
    unflipped kernel."""
    batch, in_channels, height, width = x.shape
    out_channels, _, kh, kw = weight.shape[-4:]
    groups = 1
    if weight.ndim == 5:
        groups = batch
        x = x.reshape(1, batch * in_channels, height, width)
        weight = (weight.transpose(1, 2).reshape(batch * in_channels, out_channels, kh, kw) if up
                  else weight.reshape(batch * out_channels, in_channels, kh, kw))
    elif up:
        weight = weight.transpose(0, 1)
    if up:
        x = F.conv_transpose2d(x, weight.to(x.dtype), stride=2, groups=groups)
    else:
        x = F.conv2d(x, weight.to(x.dtype), padding=kh // 2, groups=groups)
    return x.reshape(batch, out_channels, *x.shape[2:])


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool,
                     up: bool, fused: bool, up_kernel: torch.Tensor | None = None) -> torch.Tensor:
    """Modulated (and demodulated) convolution: StyleGAN2 Eq. 1 and 3 (``modulated_conv2d`` of stylegan2-ada-pytorch
    ``training/networks.py``; rosinality's ``ModulatedConv2d``).

    ``w' = W * s`` per sample; ``d = rsqrt(sum(w'^2) + 1e-8)`` over input channels and taps. With ``up`` the
    convolution is a stride-2 transposed convolution of the unflipped kernel followed by the ``[1,3,3,1]`` FIR
    with gain 4 and padding 1. ``fused`` builds the per-sample weights ``w' * d`` and applies them as one grouped
    convolution (what both official implementations use at inference); otherwise the input is scaled by ``s``
    and the output by ``d`` instead, equal up to float rounding and without weight-sized products (faster for
    training and for RLS+). ``weight`` is ``[O, I, k, k]``, or ``[N, O, I, k, k]`` for per-sample weights.
    Modulation and demodulation run in (at least) float32 even under autocast; only the convolution is cast.
    """
    batch, in_channels = x.shape[:2]
    out_channels = weight.shape[-4]
    per_sample = weight.ndim == 5
    # At least float32 for modulation and demodulation, whatever autocast does to the convolution.
    precise = torch.promote_types(weight.dtype, torch.float32)
    styles = styles.to(precise)
    weight_precise = weight.to(precise)

    demod = None
    if demodulate:
        with torch.autocast(x.device.type, enabled=False):
            if per_sample:  # [N, O, I] @ [N, I, 1]
                energy = torch.bmm(weight_precise.square().sum(dim=[3, 4]), styles.square()[:, :, None])[..., 0]
            else:
                energy = (weight_precise.square().sum(dim=[2, 3]) @ styles.square().T).T
            demod = (energy + DEMODULATION_EPS).rsqrt()

    if fused:
        shared = weight_precise if per_sample else weight_precise.unsqueeze(0)
        w = shared * styles.reshape(batch, 1, in_channels, 1, 1)
        if demod is not None:
            w = w * demod.reshape(batch, out_channels, 1, 1, 1)
        x = _convolve(x, w, up)
    else:
        x = _convolve(x * styles.reshape(batch, in_channels, 1, 1).to(x.dtype), weight, up)
        if demod is not None:
            x = x * demod.reshape(batch, out_channels, 1, 1).to(x.dtype)

    if up:
        assert up_kernel is not None
        x = fir_filter2d(x, up_kernel, pad=(1, 1))
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv, per-layer noise, bias, scaled lrelu and optional clamp (``SynthesisLayer`` of
    stylegan2-ada-pytorch ``training/networks.py``; rosinality's ``StyledConv``).

    The stored noise constant ``noise_const`` ``[R, R]`` is what ``noise_mode="const"`` uses.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, *, up: bool,
                 conv_clamp: float | None) -> None:
        super().__init__()
        self.up = up
        self.resolution = resolution
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        if up:
            self.register_buffer("up_kernel", binomial_kernel(4.0), persistent=False)
        else:
            self.up_kernel = None

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None, fused: bool) -> torch.Tensor:
        styles = full_precision_styles(self.affine, w)
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up, fused=fused,
                             up_kernel=self.up_kernel)
        if noise is not None:
            x = x + self.noise_strength.to(x.dtype).reshape(-1, 1, 1, 1) * noise.to(x.dtype)
        return scaled_lrelu(x + self.bias.to(x.dtype).reshape(-1, x.shape[1], 1, 1), self.conv_clamp)


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation, style gain ``1/sqrt(C_in)``, plus bias (``ToRGBLayer`` of
    stylegan2-ada-pytorch ``training/networks.py``; rosinality's ``ToRGB``)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, conv_clamp: float | None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool) -> torch.Tensor:
        styles = full_precision_styles(self.affine, w) * self.style_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, up=False, fused=fused)
        x = x + self.bias.to(x.dtype).reshape(-1, x.shape[1], 1, 1)
        if self.conv_clamp is not None:
            x = x.clamp(-self.conv_clamp, self.conv_clamp)
        return x
