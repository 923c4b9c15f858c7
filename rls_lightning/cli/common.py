"""Small pieces the training commands share."""
from __future__ import annotations

from pathlib import Path

import torch


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX-BF16; Linux only). On the 2-core
    build machine bf16 autocast runs the demo generator's training step 2x and the flow's 3x faster."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' becomes bf16-mixed on a GPU that supports it, or on a CPU with native bf16, else 32-true; anything
    else is passed through."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if on_gpu:
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if accelerator in ("cpu", "auto") and cpu_has_native_bf16() else "32-true"


def resume_checkpoint(run_dir: Path, resume: str | None) -> Path | None:
    """``--resume``: None, 'last' (RUN_DIR/checkpoints/last.ckpt) or a path; a missing file is an error."""
    if not resume:
        return None
    path = Path(run_dir) / "checkpoints" / "last.ckpt" if resume == "last" else Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    return path
