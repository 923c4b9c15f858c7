"""``torch.no_grad()`` as a decorator that imports torch at the first call, not when its module is imported: the
commands' modules stay importable without torch, so their ``--help`` is fast."""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

Function = TypeVar("Function", bound=Callable)


def no_grad(function: Function) -> Function:
    @functools.wraps(function)
    def without_grad(*args, **kwargs):
        import torch

        with torch.no_grad():
            return function(*args, **kwargs)

    return without_grad  # type: ignore[return-value]
