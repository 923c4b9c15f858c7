"""Small pieces the training commands share."""
from __future__ import annotations

from pathlib import Path

import torch


def resolve_precision(precision: str, accelerator: str) -> str:
    """'auto' becomes bf16-mixed on a GPU that supports it, else 32-true; anything else is passed through."""
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if on_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def resume_checkpoint(run_dir: Path, resume: str | None) -> Path | None:
    """``--resume``: None, 'last' (RUN_DIR/checkpoints/last.ckpt) or a path; a missing file is an error."""
    if not resume:
        return None
    path = Path(run_dir) / "checkpoints" / "last.ckpt" if resume == "last" else Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    return path
