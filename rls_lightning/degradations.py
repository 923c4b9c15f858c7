"""The degradation operator D of the paper (Eq. 3, 6, 7) and the corruptions of its robustness study (Table 4).

``D`` is antialiased bicubic resampling equal to PIL's ``Image.resize(size, Image.BICUBIC)`` (Keys cubic with
a = -0.5, kernel widened by the scale factor when shrinking, weights renormalised at the borders), written as two
small matrices so that it is differentiable, batched and runs on any device. PULSE and BRGM use
``F.interpolate(mode="bicubic")`` without antialiasing, which aliases badly at 8x-64x.

Corruptions take images in ``value_range`` (default ``[-1, 1]``, the generator's range) and a ``seed`` so that a
study is reproducible on any device: random numbers are drawn on the CPU and then moved.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

CUBIC_A = -0.5  # PIL's (and Keys') bicubic parameter; OpenCV and torch use -0.75.
CUBIC_SUPPORT = 2.0


def _keys_cubic(x: torch.Tensor) -> torch.Tensor:
    x = x.abs()
    a = CUBIC_A
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


@functools.lru_cache(maxsize=64)
def _bicubic_matrix_cpu(in_size: int, out_size: int) -> torch.Tensor:
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = CUBIC_SUPPORT * filter_scale
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out_index in range(out_size):
        center = (out_index + 0.5) * scale
        # PIL truncates toward zero with a C cast before clipping to the image.
        first = max(int(center - support + 0.5), 0)
        last = min(int(center + support + 0.5), in_size)
        taps = torch.arange(first, last, dtype=torch.float64)
        weights = _keys_cubic((taps - center + 0.5) / filter_scale)
        total = weights.sum()
        if total != 0:
            weights = weights / total
        matrix[out_index, first:last] = weights
    return matrix


def bicubic_matrix(in_size: int, out_size: int, device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[out_size, in_size]`` matrix of PIL's antialiased bicubic resampling along one axis."""
    return _bicubic_matrix_cpu(int(in_size), int(out_size)).to(device=device, dtype=dtype)


def resize_bicubic(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize ``[N, C, H, W]`` images to ``size`` like PIL's BICUBIC (antialiased when shrinking)."""
    out_h, out_w = (size, size) if isinstance(size, int) else size
    in_h, in_w = images.shape[-2:]
    dtype = images.dtype if images.is_floating_point() else torch.float32
    rows = bicubic_matrix(in_h, out_h, images.device, dtype)
    cols = bicubic_matrix(in_w, out_w, images.device, dtype)
    return rows @ images.to(dtype) @ cols.T


def downsample_bicubic(images: torch.Tensor, factor: int) -> torch.Tensor:
    """D(x): shrink by an integer ``factor``; the image side must be divisible by it."""
    height, width = images.shape[-2:]
    if factor < 1 or height % factor or width % factor:
        raise ValueError(f"cannot downsample {height}x{width} images by {factor}: the factor must divide the size")
    return resize_bicubic(images, (height // factor, width // factor))


class BicubicDownsample(nn.Module):
    """``nn.Module`` form of ``downsample_bicubic`` (the likelihood's D in Eq. 6-7)."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = int(factor)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return downsample_bicubic(images, self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


# ------------------------------------------------------------------------------------------- corruptions


def _cpu_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def add_gaussian_noise(images: torch.Tensor, sigma: float, seed: int,
                       value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Additive white Gaussian noise; ``sigma`` is a fraction of the value range (0.1 = 10% of full scale)."""
    low, high = value_range
    noise = torch.randn(images.shape, generator=_cpu_generator(seed), dtype=torch.float32)
    return images + (sigma * (high - low)) * noise.to(images.device, images.dtype)


def add_salt_and_pepper(images: torch.Tensor, amount: float, seed: int, salt_fraction: float = 0.5,
                        value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Set a fraction ``amount`` of pixels (all channels together) to the maximum (salt) or minimum (pepper)."""
    low, high = value_range
    n, _, h, w = images.shape
    gen = _cpu_generator(seed)
    hit = torch.rand(n, 1, h, w, generator=gen) < amount
    salt = torch.rand(n, 1, h, w, generator=gen) < salt_fraction
    hit, salt = hit.to(images.device), salt.to(images.device)
    out = torch.where(hit & salt, torch.full_like(images, high), images)
    return torch.where(hit & ~salt, torch.full_like(images, low), out)


def gaussian_kernel1d(sigma: float, radius: int | None = None) -> torch.Tensor:
    """Normalised sampled Gaussian, radius ``ceil(3 sigma)`` by default."""
    radius = max(1, math.ceil(3.0 * sigma)) if radius is None else radius
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _filter_reflect(images: torch.Tensor, kernel2d: torch.Tensor) -> torch.Tensor:
    kh, kw = kernel2d.shape
    channels = images.shape[1]
    padded = F.pad(images, [kw // 2, kw // 2, kh // 2, kh // 2], mode="reflect")
    weight = kernel2d.to(images.device, images.dtype).flip(0, 1)[None, None].expand(channels, 1, kh, kw)
    return F.conv2d(padded, weight, groups=channels)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Isotropic Gaussian blur (reflect borders). Deterministic, so it has no seed."""
    k = gaussian_kernel1d(sigma)
    return _filter_reflect(images, torch.outer(k, k))


def motion_blur_kernel(length: int, angle_degrees: float) -> torch.Tensor:
    """Normalised kernel of a segment ``length`` pixels long at ``angle_degrees`` (counter-clockwise).

    The segment is sampled at many evenly spaced points, each credited to its nearest pixel, so that a
    horizontal or vertical blur is an exact box of ``length`` taps.
    """
    if length < 1:
        raise ValueError(f"motion blur length must be >= 1, got {length}")
    size = length if length % 2 else length + 1
    center = (size - 1) / 2.0
    theta = math.radians(angle_degrees)
    samples = 16 * length
    t = (torch.arange(samples, dtype=torch.float64) + 0.5) / samples * length - length / 2.0
    cols = torch.floor(center + t * math.cos(theta) + 0.5).long().clamp(0, size - 1)
    rows = torch.floor(center - t * math.sin(theta) + 0.5).long().clamp(0, size - 1)
    kernel = torch.zeros(size * size, dtype=torch.float64)
    kernel.index_add_(0, rows * size + cols, torch.ones(samples, dtype=torch.float64))
    return (kernel / samples).reshape(size, size)


def motion_blur(images: torch.Tensor, length: int, seed: int, angle_degrees: float | None = None) -> torch.Tensor:
    """Linear motion blur; the angle is drawn uniformly in [0, 180) from ``seed`` unless given."""
    if angle_degrees is None:
        angle_degrees = float(torch.rand(1, generator=_cpu_generator(seed)).item() * 180.0)
    return _filter_reflect(images, motion_blur_kernel(length, angle_degrees))
