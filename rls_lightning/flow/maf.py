"""The latent prior p_F(w): a masked autoregressive flow (MAF) on StyleGAN2's W space (paper sections 2.2, 3.1).

``F`` maps w to the base space: ``F = MAF o standardise``, where ``standardise(w) = (w - mean) / std`` uses fixed
per-dimension statistics of mapped samples (as the official code does before its flow). The density is the
change-of-variables formula, Eq. 1:

    log p_F(w) = log N(F(w); 0, I) + log |det J_F(w)|.

Default architecture (paper section 4, official code): 5 blocks of [MADE (hidden 1024, ReLU, affine),
batch-norm, order reversal].
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
from typing import Iterator

import torch
import torch.nn.functional as F
from nflows.transforms import BatchNorm, CompositeTransform, MaskedAffineAutoregressiveTransform, ReversePermutation
from torch import nn

from .frozen import at_least_float32, fold, run_folded

LOG_2PI = math.log(2.0 * math.pi)
MAX_FEATURES = 8192
MAX_BLOCKS = 64
MAX_HIDDEN_FEATURES = 16384
MAX_MADE_RESIDUAL_BLOCKS = 16


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """MAF hyper-parameters. ``num_blocks`` and ``hidden_features``: paper section 4 (5 blocks, width 1024)."""

    features: int = 512
    num_blocks: int = 5
    hidden_features: int = 1024
    made_residual_blocks: int = 2  # nflows' default depth of each MADE; the paper does not say
    batch_norm: bool = True  # official code: a batch-norm flow layer after each MADE

    def __post_init__(self) -> None:
        """Refuse an implausible config (it may come from an untrusted flow file) before a flow is built for it:
        ``ValueError`` naming the field. The bounds are far above the paper's flow (d = 512, width 1024, 5 blocks)."""
        for name, minimum, maximum in (("features", 1, MAX_FEATURES), ("num_blocks", 1, MAX_BLOCKS),
                                       ("hidden_features", 1, MAX_HIDDEN_FEATURES),
                                       ("made_residual_blocks", 0, MAX_MADE_RESIDUAL_BLOCKS)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
            if not minimum <= value <= maximum:
                shown = int(value) if abs(value) < 10 ** 18 else f"an integer of {int(value).bit_length()} bits"
                raise ValueError(f"{name} must be an integer from {minimum} to {maximum}, got {shown}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.batch_norm, bool):
            raise ValueError(f"batch_norm must be true or false, got {type(self.batch_norm).__name__}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Float32MaskedAffine(MaskedAffineAutoregressiveTransform):
    """nflows' masked affine transform whose scale, shift and log-determinant are always computed in float32,
    so that ``bf16-mixed`` training only lowers the precision of the MADE's matrix products."""

    def _elementwise_forward(self, inputs, autoregressive_params):
        return super()._elementwise_forward(at_least_float32(inputs), at_least_float32(autoregressive_params))

    def _elementwise_inverse(self, inputs, autoregressive_params):
        return super()._elementwise_inverse(at_least_float32(inputs), at_least_float32(autoregressive_params))


class LatentFlow(nn.Module):
    """``F: W -> R^d`` with ``log_prob(w)`` (Eq. 1), ``to_gaussian(w) = F(w)`` and ``sample(n)``."""

    def __init__(self, config: FlowConfig | None = None) -> None:
        super().__init__()
        self.config = config or FlowConfig()
        d = self.config.features
        layers = []
        for _ in range(self.config.num_blocks):
            layers.append(Float32MaskedAffine(features=d, hidden_features=self.config.hidden_features,
                                              num_blocks=self.config.made_residual_blocks, activation=F.relu))
            if self.config.batch_norm:
                layers.append(BatchNorm(d))
            layers.append(ReversePermutation(d))
        self.transform = CompositeTransform(layers)
        self.register_buffer("w_mean", torch.zeros(d))
        self.register_buffer("w_std", torch.ones(d))
        self._folded: dict | None = None  # set inside ``frozen()``

    @property
    def features(self) -> int:
        return self.config.features

    def set_standardisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.w_mean.copy_(mean.reshape(-1))
        self.w_std.copy_(std.reshape(-1).clamp_min(1e-6))

    def forward_with_logdet(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(F(w), log|det J_F(w)|)`` for ``w`` of shape ``[N, d]`` (at least float32, even under autocast)."""
        if w.ndim != 2 or w.shape[1] != self.features:
            raise ValueError(f"expected w of shape [N, {self.features}], got {tuple(w.shape)}")
        x = (at_least_float32(w) - self.w_mean) / self.w_std
        if self._folded is not None:
            u, logdet = run_folded(self._folded_steps(), x)
        else:
            u, logdet = self.transform(x)
        return at_least_float32(u), at_least_float32(logdet) - self.w_std.log().sum()

    def _folded_steps(self) -> list:
        key = (self.w_mean.device, self.w_mean.dtype)  # a move to another device inside ``frozen`` is followed
        if key not in self._folded:
            self._folded[key] = fold(self.transform._transforms)
        return self._folded[key]

    def to_gaussian(self, w: torch.Tensor) -> torch.Tensor:
        """F(w), the base-space image of w (used by P_gaussian, Eq. 5)."""
        return self.forward_with_logdet(w)[0]

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        """log p_F(w), Eq. 1, per row, in nats."""
        return self.log_prob_from(*self.forward_with_logdet(w))

    def log_prob_from(self, u: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
        """Eq. 1 from a pass already made: ``log N(u; 0, I) + log|det J_F(w)|`` for ``(u, logdet) = F(w)``."""
        return -0.5 * (u.square().sum(dim=1) + self.features * LOG_2PI) + logdet

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """For use while the flow's weights do not change and it is in eval mode (the prior during inversion):
        ``forward_with_logdet`` runs the folded pass of ``flow.frozen`` (the masks applied, batch norm and the
        affine steps reduced to a few operations once, not at every call: 12-27% of the flow's forward+backward
        at the demo model's size, see benchmarks/RESULTS.md). Gradients still reach the input w. A flow that
        cannot be folded keeps nflows' pass."""
        try:
            self._folded = {(self.w_mean.device, self.w_mean.dtype): fold(self.transform._transforms)}
        except TypeError:
            self._folded = None
        try:
            yield
        finally:
            self._folded = None

    @torch.no_grad()
    def from_gaussian(self, u: torch.Tensor) -> torch.Tensor:
        """F^{-1}(u). Sequential over the d dimensions (d MADE passes per block), so slow for large batches.

        Always without autograd: nflows' inverse keeps every intermediate graph and exhausts memory at d=512.
        """
        x, _ = self.transform.inverse(at_least_float32(u))
        return x * self.w_std + self.w_mean

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples w ~ p_F (eval mode: batch-norm layers use their running statistics)."""
        u = torch.randn(n, self.features, generator=generator, device=self.w_mean.device)
        return self.from_gaussian(u)
