"""The MAF's forward pass ``(F(w), log|det J_F|)`` for a flow whose weights do not change (the prior during an
inversion), in as few tensor operations as the maths needs.

nflows evaluates each block generically: every ``MaskedLinear`` multiplies its weight by its mask, the batch-norm
layer recomputes its softplus weight, square root and log-determinant, the permutation allocates a zero
log-determinant, all at every call. With the flow in eval mode and frozen, all of that is constant, so it is folded
once (per device and dtype) into plain tensors:

* each MADE layer: ``W * mask`` and its bias; the output layer split into its scale and shift rows (nflows
  interleaves them: ``params.view(-1, d, 2)``);
* the affine step of a block: ``y = (softplus(s) + 1e-3) * x + t``, ``log|det| = sum log(softplus(s) + 1e-3)``
  (nflows 0.14's ``MaskedAffineAutoregressiveTransform``, with its scale and shift in float32 as in
  ``Float32MaskedAffine``);
* eval-mode batch norm: ``y = a * x + c`` with ``a = weight / sqrt(var + eps)``, ``c = bias - a * mean`` and the
  constant log-determinant ``sum(log a)``;
* the order reversal: an index.

The result equals nflows' pass up to floating-point rounding (tests compare it with nflows and with a brute-force
Jacobian); gradients reach the input w only.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from nflows.transforms import BatchNorm, MaskedAffineAutoregressiveTransform
from nflows.transforms.made import MADE, MaskedLinear
from nflows.transforms.permutations import Permutation
from torch import nn


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 unless it is already wider (bf16 autocast lowers only the MADE's matrix products)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _masked(layer: MaskedLinear) -> tuple[torch.Tensor, torch.Tensor]:
    return (layer.weight * layer.mask).detach(), layer.bias.detach()


@dataclasses.dataclass
class _Affine:
    """One MADE and its affine step: ``initial``, residual blocks ``(W1, b1, W2, b2)``, then scale / shift rows."""

    initial: tuple[torch.Tensor, torch.Tensor]
    residual: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
    scale: tuple[torch.Tensor, torch.Tensor]
    shift: tuple[torch.Tensor, torch.Tensor]
    epsilon: float

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.linear(x, *self.initial)
        for w1, b1, w2, b2 in self.residual:  # MADE's residual blocks: relu, linear, relu, linear, skip
            h = h + F.linear(F.relu(F.linear(F.relu(h), w1, b1)), w2, b2)
        unconstrained = at_least_float32(F.linear(h, *self.scale))
        scale = F.softplus(unconstrained) + self.epsilon
        return torch.addcmul(at_least_float32(F.linear(h, *self.shift)), scale, x), scale.log().sum(1)


@dataclasses.dataclass
class _Elementwise:
    """Eval-mode batch norm as ``a * x + c`` with its constant log-determinant."""

    a: torch.Tensor
    c: torch.Tensor
    log_det: torch.Tensor

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.addcmul(self.c, self.a, x), self.log_det


@dataclasses.dataclass
class _Reorder:
    index: torch.Tensor

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x.index_select(1, self.index), None


def _fold_affine(transform: MaskedAffineAutoregressiveTransform) -> _Affine:
    made: MADE = transform.autoregressive_net
    if getattr(made, "context_layer", None) is not None or not made.use_residual_blocks:
        raise TypeError("only an unconditional MADE of residual blocks is folded")
    residual = []
    for block in made.blocks:
        if getattr(block, "use_batch_norm", False) or not hasattr(block, "linear_layers"):
            raise TypeError(f"MADE block {type(block).__name__} cannot be folded")
        (w1, b1), (w2, b2) = (_masked(layer) for layer in block.linear_layers)
        residual.append((w1, b1, w2, b2))
    weight, bias = _masked(made.final_layer)
    # contiguous copies: a strided view would be copied again by every matrix product of the hot loop
    rows = {half: (weight[half::2].contiguous(), bias[half::2].contiguous()) for half in (0, 1)}
    return _Affine(initial=_masked(made.initial_layer), residual=residual, scale=rows[0], shift=rows[1],
                   epsilon=transform._epsilon)


def _fold_batch_norm(layer: BatchNorm) -> _Elementwise:
    with torch.no_grad():
        a = layer.weight / torch.sqrt(layer.running_var + layer.eps)
        return _Elementwise(a=a.detach(), c=(layer.bias - a * layer.running_mean).detach(), log_det=a.log().sum())


def fold(transforms: nn.ModuleList) -> list:
    """The steps of an eval-mode nflows ``CompositeTransform``'s layers; ``TypeError`` for a layer it cannot fold."""
    steps = []
    for transform in transforms:
        if isinstance(transform, MaskedAffineAutoregressiveTransform) and isinstance(transform.autoregressive_net,
                                                                                     MADE):
            if transform.training:
                raise TypeError("the flow must be in eval mode")
            steps.append(_fold_affine(transform))
        elif isinstance(transform, BatchNorm):
            if transform.training:
                raise TypeError("batch norm must be in eval mode")
            steps.append(_fold_batch_norm(transform))
        elif isinstance(transform, Permutation):
            steps.append(_Reorder(transform._permutation.detach()))
        else:
            raise TypeError(f"{type(transform).__name__} cannot be folded")
    return steps


def run_folded(steps: list, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, log|det J|)`` of the folded layers for ``x`` (already standardised) of shape ``[N, d]``."""
    log_det = None
    for step in steps:
        x, term = step(x)
        if term is not None:
            log_det = term if log_det is None else log_det + term
    if log_det is None:
        log_det = x.new_zeros(())
    return x, log_det.expand(x.shape[0]) if log_det.ndim == 0 else log_det
