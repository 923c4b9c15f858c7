"""The MAF's forward pass ``(F(w), log|det J_F|)`` for a flow whose weights do not change (the prior during an
inversion), in as few tensor operations as the maths needs.

nflows evaluates each block generically: every ``MaskedLinear`` multiplies its weight by its mask, the batch-norm
layer recomputes its softplus weight, square root and log-determinant, the permutation allocates a zero
log-determinant, all at every call. With the flow in eval mode and frozen, all of that is constant, so it is folded
once (per device and dtype) into plain tensors:

* each MADE layer: ``W * mask`` and its bias; the output layer's rows reordered to all scales, then all shifts
  (nflows interleaves them: ``params.view(-1, d, 2)``);
* the affine step of a block: ``y = (softplus(s) + 1e-3) * x + t``, ``log|det| = sum log(softplus(s) + 1e-3)``
  (nflows 0.14's ``MaskedAffineAutoregressiveTransform``, with its scale and shift in float32 as in
  ``Float32MaskedAffine``);
* eval-mode batch norm: ``y = a * x + c`` with ``a = weight / sqrt(var + eps)``, ``c = bias - a * mean`` and the
  constant log-determinant ``sum(log a)``;
* the order reversal: an index.

Each MADE and its affine step is one autograd node with its backward written out (``_MadeAffineFunction``). On the
CPU, in float32 or under bf16 autocast, each masked layer's products (``x W^T`` forward, ``g W`` backward) go
through oneDNN with ``W`` and ``W^T`` cast and packed once into its blocked layout (``FrozenLinear``): at the
inversion's shape (a few W+ rows at a time) that is about twice as fast as ``F.linear``, whose BLAS path is slow for
so few rows on some CPUs (``benchmarks/RESULTS.md``). Other devices and dtypes keep ``F.linear``.

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
from torch.autograd.function import once_differentiable


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 unless it is already wider (bf16 autocast lowers only the MADE's matrix products)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _onednn_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class FrozenLinear:
    """A masked MADE layer with constant weights: ``x W^T + b`` (``__call__``) and the product a backward pass
    needs, ``g W`` (``transposed``). Given a compute dtype (``onednn_dtype``) both run through oneDNN with ``W``,
    ``W^T`` and ``b`` cast and packed once for it, at the first such call and for its number of rows; otherwise
    ``F.linear`` and ``matmul``."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight, self.bias = weight.detach().contiguous(), bias.detach().contiguous()
        self.packed: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._unpackable: set[torch.dtype] = set()

    def pack(self, rows: int, dtype: torch.dtype) -> bool:
        """Packs ``W`` and ``W^T`` in ``dtype`` once; False where this torch or CPU cannot, or where the packed
        products disagree with ``F.linear`` on a probe (these oneDNN entry points are torch-internal)."""
        if dtype not in self.packed and dtype not in self._unpackable:
            try:
                reorder = torch.ops.mkldnn._reorder_linear_weight
                weight = self.weight.to(dtype)
                packed = (reorder(weight, rows), reorder(weight.t().contiguous(), rows), self.bias.to(dtype))
                if self._agrees(packed, dtype):
                    self.packed[dtype] = packed
                else:
                    self._unpackable.add(dtype)
            except (AttributeError, RuntimeError):  # no oneDNN in this torch, or no such dtype on this CPU
                self._unpackable.add(dtype)
        return dtype in self.packed

    def _agrees(self, packed: tuple[torch.Tensor, torch.Tensor, torch.Tensor], dtype: torch.dtype) -> bool:
        out_features, in_features = self.weight.shape
        x = torch.linspace(-1, 1, in_features, dtype=self.weight.dtype)[None]
        g = torch.linspace(1, -1, out_features, dtype=self.weight.dtype)[None]
        tolerance = 1e-4 if dtype == torch.float32 else 3e-2
        for ours, exact in ((_onednn_linear(x.to(dtype), packed[0], packed[2]), F.linear(x, self.weight, self.bias)),
                            (_onednn_linear(g.to(dtype), packed[1], None), g @ self.weight)):
            scale = exact.abs().max().item() + 1e-6
            if ours.shape != exact.shape or (ours.float() - exact).abs().max().item() > tolerance * scale:
                return False
        return True

    def __call__(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        if dtype is None:
            return F.linear(x, self.weight, self.bias)
        weight, _, bias = self.packed[dtype]
        return _onednn_linear(x.to(dtype).contiguous(), weight, bias)

    def transposed(self, grad: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        if dtype is None:
            return grad @ self.weight.to(grad.dtype)
        return _onednn_linear(grad.to(dtype).contiguous(), self.packed[dtype][1], None)


def onednn_dtype(x: torch.Tensor, layers: list[FrozenLinear]) -> torch.dtype | None:
    """The dtype in which ``layers`` run through oneDNN for ``x``, or None: float32 for float32 CPU tensors; under
    CPU bf16 autocast, bfloat16 (what autocast would lower ``F.linear`` to, without re-casting the weights at every
    call as autocast does for tensors that need no gradient). Float32 layers only, every one packed."""
    if x.device.type != "cpu":
        return None
    if torch.is_autocast_enabled("cpu"):
        dtype = torch.get_autocast_dtype("cpu")
        if dtype != torch.bfloat16:
            return None
    elif x.dtype == torch.float32:
        dtype = torch.float32
    else:
        return None
    usable = all(layer.weight.dtype == torch.float32 and layer.pack(x.shape[0], dtype) for layer in layers)
    return dtype if usable else None


def _masked(layer: MaskedLinear) -> FrozenLinear:
    return FrozenLinear(layer.weight * layer.mask, layer.bias)


def _relu_backward(grad: torch.Tensor, pre_activation: torch.Tensor) -> torch.Tensor:
    """``grad * [pre_activation > 0]``, the derivative autograd uses for ``relu``, in one operation."""
    return torch.ops.aten.threshold_backward(grad, pre_activation.to(grad.dtype), 0)


class _MadeAffineFunction(torch.autograd.Function):
    """``(y, log|det|)`` of one MADE and its affine step as a single autograd node, with the backward written out
    (the weights are frozen, so only the input's gradient is needed). Per row, with ``L0`` the initial layer,
    residual blocks ``h <- h + L2(relu(L1(relu(h))))``, ``r, m = L_out(h)``, ``s = softplus(r) + eps``:
    ``y = m + s * x`` and ``log|det| = sum log s``. Backward, for ``gy`` and ``gl``:
    ``gs = gy * x + gl / s``, ``gr = gs * sigmoid(r)``, ``gh = L_out^T [gr, gy]``, through each block in reverse
    ``gt = (L2^T gh) * [t > 0]``, ``gh += (L1^T gt) * [h_in > 0]``, and ``gx = gy * s + L0^T gh``.

    One node instead of ~25 keeps the autograd engine's per-node cost out of the inversion's step."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, made: "_Affine") -> tuple[torch.Tensor, torch.Tensor]:
        dtype = ctx.dtype = onednn_dtype(x, made.layers)
        h = made.initial(x, dtype)
        saved = []
        for first, second in made.residual:
            t = first(F.relu(h), dtype)
            saved += [h, t]
            h = h + second(F.relu(t), dtype)
        d = x.shape[1]
        out = at_least_float32(made.output(h, dtype))
        raw, shift = out[:, :d], out[:, d:]
        scale = F.softplus(raw) + made.epsilon
        ctx.made = made
        ctx.save_for_backward(x, raw, scale, *saved)
        return torch.addcmul(shift, scale, x), scale.log().sum(1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor, grad_log_det: torch.Tensor):
        made: _Affine = ctx.made
        dtype = ctx.dtype
        x, raw, scale, *saved = ctx.saved_tensors
        grad_raw = torch.addcmul(grad_y * x, grad_log_det[:, None], scale.reciprocal()) * torch.sigmoid(raw)
        grad_h = made.output.transposed(torch.cat([grad_raw, grad_y], 1), dtype)
        pre_activations = list(zip(saved[0::2], saved[1::2]))  # (h_in, t) of each residual block
        for (first, second), (h_in, t) in zip(reversed(made.residual), reversed(pre_activations)):
            grad_t = _relu_backward(second.transposed(grad_h, dtype), t)
            grad_h = grad_h + _relu_backward(first.transposed(grad_t, dtype), h_in)
        return torch.addcmul(made.initial.transposed(grad_h, dtype), grad_y, scale).to(x.dtype), None


@dataclasses.dataclass
class _Affine:
    """One MADE and its affine step: ``initial``, residual blocks ``(first, second)``, then ``output``, whose rows
    are the ``d`` unconstrained scales followed by the ``d`` shifts."""

    initial: FrozenLinear
    residual: list[tuple[FrozenLinear, FrozenLinear]]
    output: FrozenLinear
    epsilon: float
    layers: list[FrozenLinear] = dataclasses.field(init=False)  # all of the above, listed once (hot path)

    def __post_init__(self) -> None:
        self.layers = [self.initial, *(layer for block in self.residual for layer in block), self.output]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _MadeAffineFunction.apply(x, self)


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
        first, second = block.linear_layers
        residual.append((_masked(first), _masked(second)))
    final = made.final_layer
    weight = final.weight * final.mask
    # nflows interleaves each feature's scale and shift rows (params.view(-1, d, 2)): all scales first, then shifts
    rows = torch.cat([torch.arange(0, weight.shape[0], 2), torch.arange(1, weight.shape[0], 2)])
    return _Affine(initial=_masked(made.initial_layer), residual=residual,
                   output=FrozenLinear(weight[rows], final.bias[rows]), epsilon=transform._epsilon)


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
