"""A deliberately different StyleGAN2 forward pass, used only as a test oracle.

It reads the rosinality layout (``tests/support/checkpoint_writers.rosinality_state``), puts the equalized-lr gain
on the convolution weights as rosinality does (the library puts none there), loops over samples instead of grouping,
and upsamples the RGB skip with a strided transposed convolution instead of zero insertion. Written from the
formulas of the StyleGAN2 paper (Karras et al. 2020, Eq. 1-3, appendix B) as rosinality's ``model.py`` applies them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def _fir4() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
    return torch.outer(taps, taps) / 64 * 4


def _depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return F.conv2d(x, kernel[None, None].expand(c, 1, 4, 4), groups=c)


def _style(sd, prefix, w):
    weight = sd[f"{prefix}.conv.modulation.weight"].double()
    return w @ (weight / math.sqrt(weight.shape[1])).T + sd[f"{prefix}.conv.modulation.bias"].double()


def _modconv(sd, prefix, x, w, noise, upsample, clamp=None):
    weight = sd[f"{prefix}.conv.weight"].double()[0]  # [O, I, k, k]
    fan_in = weight[0].numel()
    outs = []
    for n in range(x.shape[0]):
        s = _style(sd, prefix, w[n:n + 1])[0]
        wn = weight / math.sqrt(fan_in) * s[None, :, None, None]
        wn = wn / torch.sqrt((wn ** 2).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        xn = x[n:n + 1]
        if upsample:
            y = F.conv_transpose2d(xn, wn.transpose(0, 1), stride=2)
            y = _depthwise(F.pad(y, [1, 1, 1, 1]), _fir4())
        else:
            y = F.conv2d(xn, wn, padding=1)
        outs.append(y)
    y = torch.cat(outs)
    if noise is not None:
        y = y + sd[f"{prefix}.noise.weight"].double() * noise.double()
    y = F.leaky_relu(y + sd[f"{prefix}.activate.bias"].double()[None, :, None, None], 0.2) * SQRT2
    return y if clamp is None else y.clamp(-clamp, clamp)


def _torgb(sd, prefix, x, w, clamp=None):
    weight = sd[f"{prefix}.conv.weight"].double()[0]
    outs = []
    for n in range(x.shape[0]):
        s = _style(sd, prefix, w[n:n + 1])[0]
        wn = weight / math.sqrt(weight.shape[1]) * s[None, :, None, None]
        outs.append(F.conv2d(x[n:n + 1], wn))
    y = torch.cat(outs) + sd[f"{prefix}.bias"].double().reshape(1, -1, 1, 1)
    return y if clamp is None else y.clamp(-clamp, clamp)


def _upsample_skip(img):
    c = img.shape[1]
    y = F.conv_transpose2d(img, _fir4()[None, None].expand(c, 1, 4, 4), stride=2, groups=c)
    return y[:, :, 1:-1, 1:-1]


def reference_mapping(sd, z: torch.Tensor, n_mlp: int, lr_mul: float = 0.01) -> torch.Tensor:
    x = z.double()
    x = x / torch.sqrt((x ** 2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        weight = sd[f"style.{i}.weight"].double()
        x = x @ (weight * lr_mul / math.sqrt(weight.shape[1])).T + sd[f"style.{i}.bias"].double() * lr_mul
        x = F.leaky_relu(x, 0.2) * SQRT2
    return x


def reference_synthesis(sd, ws: torch.Tensor, noises: list[torch.Tensor | None],
                        clamp: float | None = None) -> torch.Tensor:
    """``noises[j]`` for rosinality's ``noises.noise_j`` order; ``None`` means no noise. ``clamp`` is NVIDIA's
    ``conv_clamp``: applied after every activation and every ToRGB bias."""
    ws = ws.double()
    x = sd["input.input"].double().expand(ws.shape[0], -1, -1, -1)
    x = _modconv(sd, "conv1", x, ws[:, 0], noises[0], False, clamp)
    img = _torgb(sd, "to_rgb1", x, ws[:, 1], clamp)
    k = 0
    while f"convs.{2 * k}.conv.weight" in sd:
        x = _modconv(sd, f"convs.{2 * k}", x, ws[:, 2 * k + 1], noises[2 * k + 1], True, clamp)
        x = _modconv(sd, f"convs.{2 * k + 1}", x, ws[:, 2 * k + 2], noises[2 * k + 2], False, clamp)
        img = _upsample_skip(img) + _torgb(sd, f"to_rgbs.{k}", x, ws[:, 2 * k + 3], clamp)
        k += 1
    return img
