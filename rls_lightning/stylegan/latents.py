"""Mapped latents w = G.mapping(z), z ~ N(0, I), drawn from named seeded streams: the flow's training data, the
RLS initialisation (the mean of 100,000 mapped w, paper sec. 4) and ``w_avg`` of a trained generator.

Every random stream has its own seed derived from one user seed and a stream name, so that training, validation,
statistics and the Gaussianization report never share samples.
"""
from __future__ import annotations

import zlib
from typing import Iterator

import torch
from torch import nn


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream ('train', 'val', 'stats', 'report', ...)."""
    return (int(seed) * 1_000_003 + zlib.crc32(stream.encode())) % (2**63 - 1)


@torch.no_grad()
def draw_z(num: int, z_dim: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """z ~ N(0, I) drawn on the CPU from ``seed``, so that the same seed gives the same z on every device."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(num, z_dim, generator=generator).to(device)


@torch.no_grad()
def mapped_latents(mapping: nn.Module, z_dim: int, num: int, seed: int, device: torch.device | str,
                   batch_size: int = 10_000) -> Iterator[torch.Tensor]:
    """Yield ``G.mapping(z)`` in chunks of ``batch_size`` for ``num`` seeded z (deterministic on any device)."""
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    dtype = next((p.dtype for p in mapping.parameters()), torch.float32)  # float64 for a 64-true inversion's copy
    remaining = num
    while remaining > 0:
        n = min(batch_size, remaining)
        z = torch.randn(n, z_dim, generator=generator).to(device, dtype)
        yield mapping(z).float()
        remaining -= n


@torch.no_grad()
def latent_statistics(mapping: nn.Module, z_dim: int, num: int, seed: int, device: torch.device | str,
                      batch_size: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation of ``num`` mapped w, accumulated in float64.

    The mean is the paper's RLS initialisation ("the mean of 100,000 randomly generated latent vectors", sec. 4).
    """
    total = sq_total = None
    for w in mapped_latents(mapping, z_dim, num, seed, device, batch_size):
        w = w.double()
        total = w.sum(0) if total is None else total + w.sum(0)
        sq_total = w.square().sum(0) if sq_total is None else sq_total + w.square().sum(0)
    mean = total / num
    var = (sq_total / num - mean.square()).clamp_min(0.0) * num / max(num - 1, 1)
    return mean.float(), var.sqrt().float()
