"""Exact Euclidean projection onto an l1 ball, the constraint set of RLS+ (paper Eq. 7).

Duchi, Shalev-Shwartz, Singer & Chandra (2008), "Efficient projections onto the l1-ball": the projection of v onto
{x : ||x||_1 <= r} is ``sign(v) * max(|v| - theta, 0)``, where theta >= 0 is the threshold that makes the l1 norm
exactly r (found by sorting |v|), and theta = 0 when v is already inside.
"""
from __future__ import annotations

import torch


def project_onto_l1_ball(vectors: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    """Project every row (last dimension) of ``vectors`` onto the l1 ball of ``radius`` centred at 0."""
    shape = vectors.shape
    v = vectors.reshape(-1, shape[-1])
    magnitude = v.abs()
    inside = magnitude.sum(1) <= radius
    sorted_mag, _ = magnitude.sort(dim=1, descending=True)
    cumulative = sorted_mag.cumsum(dim=1)
    ranks = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    # rho: the largest k with sorted_k > (cumsum_k - r) / k; the condition holds for k = 1 .. rho only.
    condition = sorted_mag - (cumulative - radius) / ranks > 0
    rho = condition.to(v.dtype).cumprod(dim=1).sum(dim=1).clamp_min(1).long()
    theta = (cumulative.gather(1, (rho - 1)[:, None]).squeeze(1) - radius) / rho.to(v.dtype)
    projected = v.sign() * (magnitude - theta[:, None]).clamp_min(0)
    return torch.where(inside[:, None], v, projected).reshape(shape)


def project_rows_onto_ball(ws: torch.Tensor, centre: torch.Tensor, radius: float) -> torch.Tensor:
    """``centre + P(ws - centre)`` for every row w_i of W+ (each of the L rows has its own ball, as in the
    official code)."""
    return centre + project_onto_l1_ball(ws - centre, radius)
