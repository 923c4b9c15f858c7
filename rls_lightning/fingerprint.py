"""Short, stable descriptions of what a file or a run depends on."""
from __future__ import annotations

import hashlib
from typing import Iterable

import torch


def tensor_digest(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over names, shapes and float32 values, in name order (independent of device and dtype)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        values = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(values.shape)).encode())
        digest.update(values.numpy().tobytes())
    return digest.hexdigest()


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
