"""The per-image metrics of the evaluation, by name: what ``metrics.evaluator.Evaluator`` scores each pair with.

A metric is a function ``(context, sr, hr) -> scores or None`` registered under the name it is reported by:

    @register_metric("PSNR")
    def _psnr(context, sr, hr):
        return psnr(sr, hr, context.channels)

``sr`` and ``hr`` are same-sized ``[N, 3, H, W]`` batches in [0, 1] on the context's device; the result is one
score per image (``[N]``), or None when the metric does not apply to this batch (its network is not loaded, or
the images are too small for it: the function says so once through ``context.left_out``). Metrics run in the
order they were registered, which is the order of the columns of metrics.csv. ``metric_names()`` lists them and
``get_metric(name)`` finds one (``UnknownMetric``, naming every known metric, otherwise).

Torch and the metric code are imported when a metric first runs, so that a command's ``--help`` needs neither.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    import torch

NIQE_MIN_SIZE = 192
# AlexNet (LPIPS's backbone): an 11x11 stride-4 convolution (padding 2), then two 3x3 stride-2 max-pools before
# its third layer, which need a 7 px map after the convolution: (31 + 4 - 11) // 4 + 1 = 7
LPIPS_MIN_SIZE = 31


class MetricContext(Protocol):
    """What a metric may use: the evaluation's settings and loaded networks (None when unavailable)."""

    channels: str
    lpips: torch.nn.Module | None
    identity: torch.nn.Module | None
    niqe: object

    def left_out(self, metric: str, side: int, needs: str) -> None:
        """Note (once per metric) that images of ``side`` px are too small for ``metric``."""


PerImageMetric = Callable[[MetricContext, "torch.Tensor", "torch.Tensor"], "torch.Tensor | None"]

_METRICS: dict[str, PerImageMetric] = {}


class UnknownMetric(ValueError):
    """A metric name that is not registered; the message lists the registered ones."""


def register_metric(name: str) -> Callable[[PerImageMetric], PerImageMetric]:
    """Decorator: register the function as the per-image metric ``name`` (a name is registered once)."""

    def register(function: PerImageMetric) -> PerImageMetric:
        if name in _METRICS:
            raise ValueError(f"a metric named {name!r} is already registered ({_METRICS[name].__qualname__})")
        _METRICS[name] = function
        return function

    return register


def metric_names() -> list[str]:
    """Every registered metric, in the order they run and are reported."""
    return list(_METRICS)


def get_metric(name: str) -> PerImageMetric:
    """The metric registered as ``name``; ``UnknownMetric`` naming the known ones otherwise."""
    try:
        return _METRICS[name]
    except KeyError:
        raise UnknownMetric(f"unknown metric {name!r}; known: {', '.join(_METRICS)}") from None


# ---------------------------------------------------------------------- the paper's per-image metrics

@register_metric("PSNR")
def _psnr(context: MetricContext, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    from .fidelity import psnr

    return psnr(sr, hr, context.channels)


@register_metric("SSIM")
def _ssim(context: MetricContext, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    from .fidelity import ssim

    return ssim(sr, hr, context.channels)


@register_metric("MS-SSIM")
def _ms_ssim(context: MetricContext, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor | None:
    from .fidelity import ms_ssim, ms_ssim_fits

    side = min(sr.shape[-2:])
    if not ms_ssim_fits(side):
        context.left_out("MS-SSIM", side, "more than 160 px; SSIM is reported")
        return None
    return ms_ssim(sr, hr, context.channels)


@register_metric("LPIPS")
def _lpips(context: MetricContext, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor | None:
    if context.lpips is None:  # its network could not be loaded: said once when the evaluation started
        return None
    side = min(sr.shape[-2:])
    if side < LPIPS_MIN_SIZE:
        context.left_out("LPIPS", side, f"at least {LPIPS_MIN_SIZE} px for its AlexNet layers")
        return None
    return context.lpips(sr * 2 - 1, hr * 2 - 1).flatten()


@register_metric("ID")
def _identity(context: MetricContext, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor | None:
    if context.identity is None:
        return None
    return (context.identity(sr) * context.identity(hr)).sum(dim=1)


@register_metric("NIQE")
def _niqe(context: MetricContext, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor | None:
    import torch

    from ..image_io import to_uint8

    side = min(sr.shape[-2:])
    if side < NIQE_MIN_SIZE:
        context.left_out("NIQE", side, f"at least {NIQE_MIN_SIZE} px: 2x2 patches of 96")
        return None
    niqe = [context.niqe.score(to_uint8(img * 2 - 1)) for img in sr]  # to_uint8 takes [-1, 1]
    return torch.tensor(niqe, dtype=torch.float64)
