"""StyleGAN2 discriminator ('resnet' architecture, Karras et al. 2020, config-f), for training our demo generator.

FromRGB at full resolution, then one residual block per resolution halving (two 3x3 convs, the second strided after
a [1,3,3,1] blur; a blurred, subsampled 1x1 skip; sum scaled by 1/sqrt(2)), then the 4x4 epilogue: minibatch
standard deviation, a 3x3 conv and two fully connected layers. Equalized learning rate everywhere.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .filters import binomial_kernel, fir_filter2d
from .layers import EqualizedLinear, scaled_lrelu
from .networks import GeneratorConfig


class EqualizedConv2d(nn.Module):
    """``conv(x, W / sqrt(fan_in)) + b``, optionally after a blur and with stride 2, optionally lrelu * sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: bool = True, down: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.activation = activation
        self.down = down
        if down:
            self.register_buffer("blur_kernel", binomial_kernel(1.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.weight_gain).to(x.dtype)
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        k = self.weight.shape[-1]
        if self.down:
            # blur (4 taps, padded so that the strided conv lands on H / 2), then stride 2
            x = fir_filter2d(x, self.blur_kernel, pad=((k + 1) // 2, (k + 1) // 2) if k > 1 else (1, 1))
            x = F.conv2d(x, weight, bias, stride=2)
        else:
            x = F.conv2d(x, weight, bias, padding=k // 2)
        return scaled_lrelu(x) if self.activation else x


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, down=True)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.skip(x) + self.conv1(self.conv0(x))) * (1.0 / math.sqrt(2.0))


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one channel: the standard deviation of features across groups of samples, averaged."""
    n, c, h, w = x.shape
    group = min(group_size, n)
    while n % group:
        group -= 1
    y = x.float().reshape(group, -1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # [n / group]
    y = y.reshape(-1, 1, 1, 1).repeat(group, 1, h, w).to(x.dtype)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """Real/fake logits for ``[N, C, R, R]`` images, channels ``min(channel_base / r, channel_max)``."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        res = config.img_resolution
        self.from_rgb = EqualizedConv2d(config.img_channels, config.channels(res), 1)
        blocks = []
        while res > 4:
            blocks.append(DiscriminatorBlock(config.channels(res), config.channels(res // 2)))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        c4 = config.channels(4)
        self.conv = EqualizedConv2d(c4 + 1, c4, 3)
        self.fc = EqualizedLinear(c4 * 16, c4, activation=True)
        self.out = EqualizedLinear(c4, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(images)
        for block in self.blocks:
            x = block(x)
        x = self.conv(minibatch_stddev(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
