"""The one place that turns what a user asks for (``auto``, ``cuda:1``, ``bf16-mixed``...) into the hardware and
precision a run uses, for every shell and the API alike, and the Lightning warnings silenced on purpose. torch is
imported only when a question needs it, so that ``--help`` stays fast."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Iterator

DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")  # the API's device names
PRECISIONS = ("32-true", "64-true", "bf16-mixed", "16-mixed", "auto")  # what an inversion accepts


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX-BF16; Linux only). On the 2-core
    build machine bf16 autocast runs the demo generator's training step 2x and the flow's 3x faster."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_accelerator(accelerator: str) -> str:
    """A Lightning accelerator name: ``auto`` becomes gpu when torch sees one, else cpu; ``cuda`` is gpu."""
    if accelerator == "auto":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if accelerator == "cuda" else accelerator


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' becomes bf16-mixed on a GPU that supports it, or on a CPU with native bf16, else 32-true; anything
    else is passed through."""
    if precision != "auto":
        return precision
    import torch

    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if accelerator in ("cpu", "auto") and cpu_has_native_bf16() else "32-true"


def precision_refusal(accelerator: str, precision: str) -> str | None:
    """Why a Lightning accelerator (``cpu``, ``gpu``, ``mps``; see ``resolve_accelerator``) cannot run a precision,
    as ``precision <value>: <why>``, or None. The commands say it before loading anything, the API where it
    resolves the device (``resolve_device``)."""
    if precision == "16-mixed" and accelerator == "cpu":
        return "precision 16-mixed: float16 autocast needs a GPU; use bf16-mixed or 32-true on the CPU"
    if precision == "64-true" and accelerator == "mps":
        return "precision 64-true: MPS has no float64; use 32-true"
    return None


def resolve_device(device: str, precision: str) -> tuple[str, list[int] | int, str]:
    """``(accelerator, devices, precision)`` for a torch device name (``auto``: the first GPU if any, else the
    CPU; ``cuda:N``; ``mps``) and a precision (``auto``: see ``resolve_precision``). Raises ``ValueError`` naming
    the value and what is allowed."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: must be one of {', '.join(PRECISIONS)}")
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = str(device).partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"device {device!r}: must be one of {', '.join(DEVICES)}")
    accelerator = {"cpu": "cpu", "cuda": "gpu", "mps": "mps"}[kind]
    if problem := precision_refusal(accelerator, precision):
        raise ValueError(problem)
    return accelerator, [int(index)] if index else 1, resolve_precision(precision, accelerator)


def silence_known_lightning_warnings() -> None:
    """Warnings about choices made on purpose: a sized seed stream whose seeds follow the global step (so it
    needs no loader state to resume), frozen (eval-mode) networks, checkpoints of GANs taken after the step."""
    for pattern in (r".*IterableDataset.*has `__len__` defined.*", r".*module\(s\) in eval mode.*",
                    r".*isinstance\(treespec, LeafSpec\).*", r".*litlogger.*",
                    r".*ModelCheckpoint with manual optimization.*", r".*smaller than the logging interval.*",
                    r".*your dataloader is not resumable.*"):
        warnings.filterwarnings("ignore", message=pattern)


@contextlib.contextmanager
def true_float32(precision: str) -> Iterator[None]:
    """Under ``32-true``, float32 matrix products and convolutions for the duration, TF32 off: on Ampere and later
    GPUs PyTorch runs cuDNN convolutions in TF32 (10-bit mantissa) unless told not to, which perturbs RLS like
    bf16 and can move a face to another minimum of its search (benchmarks/precision_stability.py), so that
    "32-true" on a GPU would not draw the CPU's picture. The previous settings come back afterwards."""
    import torch

    if precision != "32-true":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
