"""Terms of the RLS objective (paper Eq. 5-7) and of the baselines' objectives, one small function each.

Every function returns one value **per image** (shape ``[N]``), so that a batch of images is optimised exactly
as if each were alone once the per-image losses are summed (Adam's update of an image's latent then only sees its
own gradient).

Scale of the likelihood: the paper writes ``||y - D(G(w))||_1`` (Eq. 6), the l1 norm, i.e. the sum over the LR
values; the official code takes ``10 * mean |y - D(G(w))|`` with all weights 10 times the paper's (mgheisar/RLS_PLUS
``rls.py``). Both map the images to **[0, 1]** first (``(img + 1) / 2``); the likelihoods here take our [-1, 1]
tensors and return the value on [0, 1] (half the absolute difference, a quarter of the squared one), summed
(``reduction="sum"``, Eq. 6 with sec. 3.1's Laplace scale taken as 1) or averaged (the official code and the
default of RLS, see ``SearchSettings``; PULSE's
``100 * MSE``; BRGM's pixel MSE is on 0-255, i.e. 255^2 times ours, as its preset's weight says).
"""
from __future__ import annotations

import math

import torch

from ..flow.maf import LatentFlow
from ..stylegan.latents import mapped_latents


UNIT_SCALE = 0.5  # [-1, 1] -> [0, 1]: x01 = (x + 1) / 2, so differences halve


def l1_likelihood(prediction_lr: torch.Tensor, target_lr: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood under Laplace noise (paper sec. 3.1, Eq. 6-7): |y - D(G(w))| over the LR values on
    the [0, 1] scale (inputs in [-1, 1]), summed (``reduction="sum"``, the l1 norm of Eq. 6) or averaged."""
    difference = UNIT_SCALE * (prediction_lr - target_lr).abs().flatten(1)
    return difference.sum(1) if reduction == "sum" else difference.mean(1)


def l2_likelihood(prediction_lr: torch.Tensor, target_lr: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Squared error per image on the [0, 1] scale, averaged (PULSE's and BRGM's Gaussian-noise likelihood) or
    summed."""
    difference = UNIT_SCALE ** 2 * (prediction_lr - target_lr).square().flatten(1)
    return difference.sum(1) if reduction == "sum" else difference.mean(1)


def flow_priors(flow: LatentFlow, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P_w, P_gaussian)`` of Eq. 5 from one pass of the flow over the L rows of W+:

    P_w = (1/L) sum_i log p_F(w_i) (the flow's log-density, Eq. 1) and
    P_gaussian = -(1/L) sum_i (||F(w_i)||_2 - sqrt(d))^2 (keeps F(w_i) near the sphere of radius sqrt(d)).
    """
    n, rows, d = ws.shape
    gaussian, log_det = flow.forward_with_logdet(ws.reshape(n * rows, d))
    log_density = flow.log_prob_from(gaussian, log_det).reshape(n, rows)
    norms = gaussian.norm(dim=1).reshape(n, rows)
    return log_density.mean(1), -(norms - math.sqrt(d)).square().mean(1)


def flow_log_density(flow: LatentFlow, ws: torch.Tensor) -> torch.Tensor:
    """P_w = (1/L) sum_i log p_F(w_i), Eq. 5: the flow log-density averaged over the L rows of W+."""
    return flow_priors(flow, ws)[0]


TYPICAL_SAMPLES = 2000  # mapped w behind typical_log_density
TYPICAL_QUANTILE = 0.01


@torch.no_grad()
def typical_log_density(flow: LatentFlow, mapping: torch.nn.Module, z_dim: int, *, samples: int = TYPICAL_SAMPLES,
                        quantile: float = TYPICAL_QUANTILE, seed: int = 0) -> float:
    """The ``quantile`` of log p_F(w) over ``samples`` mapped w = G.mapping(z) (seeded): an RLS anchor whose P_w
    (Eq. 5) lies below it has left the high-density region the prior is there to keep it in (sec. 1: "healthy
    regions"). On the demo model 1% of mapped w lie below +32 (mean +136); anchors the l1-sum reading of Eq. 6
    left out there (-600 to -1,200) carried marks, those of the default (+191 to +315) did not (README, "The RLS
    anchor on held-out faces")."""
    mapping_device = next(mapping.parameters()).device
    w = next(mapped_latents(mapping, z_dim, samples, seed, mapping_device, batch_size=samples))
    w = (w[:, 0] if w.dim() == 3 else w).to(next(flow.parameters()).device)
    return float(flow.log_prob(w).float().quantile(quantile))


def gaussianization_prior(flow: LatentFlow, ws: torch.Tensor) -> torch.Tensor:
    """P_gaussian = -(1/L) sum_i (||F(w_i)||_2 - sqrt(d))^2, Eq. 5: keeps F(w_i) near the sphere of radius sqrt(d)."""
    return flow_priors(flow, ws)[1]


CROSS_SMOOTHING = 1e-2  # see mean_distance_cross_prior


def _pairs(rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.triu_indices(rows, rows, offset=1, device=device).unbind(0)


def cross_prior(ws: torch.Tensor) -> torch.Tensor:
    """P_cross = -sum_{i<j} ||w_i - w_j||_2^2, Eq. 5 (pairwise squared Euclidean distances of the W+ rows)."""
    i, j = _pairs(ws.shape[1], ws.device)
    return -(ws[:, i] - ws[:, j]).square().sum(dim=(1, 2))


def mean_squared_cross_prior(ws: torch.Tensor) -> torch.Tensor:
    """Eq. 5's P_cross averaged over the row pairs: -mean_{i<j} ||w_i - w_j||_2^2 (Eq. 5's squared distance with
    the 1/L-style normalisation that Eq. 5 gives P_w and P_gaussian, and the official code gives its cross term)."""
    rows = ws.shape[1]
    return cross_prior(ws) / (rows * (rows - 1) // 2)


def mean_distance_cross_prior(ws: torch.Tensor) -> torch.Tensor:
    """The official code's cross term, negated: -mean_{i<j} ||w_i - w_j||_2 (not squared, averaged over pairs).

    A distance's gradient is a unit vector however close the rows are, and the term itself pulls them together:
    near their collapse its direction is set by rounding, and a batch of two, another CPU or bf16 then gave RLS
    anchors 0.008 apart (W+ rows, toy model) where a batch of one agreed with itself to 1e-6. So the distance is
    smoothed, ``sqrt(||w_i - w_j||^2 + eps^2)`` with ``eps = CROSS_SMOOTHING`` = 0.01: below eps it pulls like a
    spring, above it like the official term (two mapped w of the demo model stand 12 apart); anchors of a batch
    and of one image then agree to 2e-6.
    """
    i, j = _pairs(ws.shape[1], ws.device)
    return -((ws[:, i] - ws[:, j]).square().sum(-1) + CROSS_SMOOTHING ** 2).sqrt().mean(1)


def geocross(latents: torch.Tensor) -> torch.Tensor:
    """PULSE's GEOCROSS (as a loss, positive): mean over row pairs of the squared geodesic angle
    ``(2 atan2(||x - y||, ||x + y||))^2`` between the rows of the (spherical) latent."""
    i, j = _pairs(latents.shape[1], latents.device)
    x, y = latents[:, i], latents[:, j]
    angle = 2 * torch.atan2((x - y).norm(dim=-1), (x + y).norm(dim=-1))
    return angle.square().mean(1)


def cosine_cross_prior(ws: torch.Tensor) -> torch.Tensor:
    """BRGM's cross prior (as a loss, positive): sum over row pairs of the cosine distance ``1 - cos(w_i, w_j)``."""
    i, j = _pairs(ws.shape[1], ws.device)
    cosine = torch.nn.functional.cosine_similarity(ws[:, i], ws[:, j], dim=-1)
    return (1 - cosine).sum(1)


def gaussian_w_prior(ws: torch.Tensor, w_mean: torch.Tensor, w_std: torch.Tensor) -> torch.Tensor:
    """BRGM's Gaussian prior on W+ (as a loss, positive): mean of ((w - mean) / std)^2 over rows and dimensions."""
    return ((ws - w_mean) / w_std).square().flatten(1).mean(1)
