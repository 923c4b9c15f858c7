"""Pretrained files by name: the registry, verified downloads into the torch hub cache, offline mode and mirrors.

    python -m rls_lightning.weights list | fetch NAME... | verify
"""
from __future__ import annotations

import sys
from pathlib import Path

from .registry import BY_NAME, FILES, GENERATOR_NAMES, PretrainedFile, UnknownName, lookup
from .store import WeightsUnavailable, ensure, offline_requested
from .verification import VerificationFailed

__all__ = ["FILES", "BY_NAME", "GENERATOR_NAMES", "PretrainedFile", "UnknownName", "WeightsUnavailable",
           "VerificationFailed", "ensure", "lookup", "offline_requested", "resolve_generator", "is_registry_name"]


def is_registry_name(value: str | Path) -> bool:
    """A bare word (no folder, no file suffix) that the user meant as a registry name."""
    text = str(value)
    return "/" not in text and "\\" not in text and Path(text).suffix == "" and not Path(text).exists()


def resolve_generator(value: str | Path, option: str = "--generator", weights_dir: str | Path | None = None,
                      log=lambda line: print(line, file=sys.stderr)) -> Path:
    """A generator checkpoint given as a path or a registry name (``ffhq-1024``): the path, or the verified
    cached download of the named file. Raises ``cli.errors.UsageError`` with one line otherwise."""
    from ..cli.errors import UsageError

    if not is_registry_name(value):
        return Path(value)
    try:
        entry = lookup(str(value), "generator")
        return ensure(entry, weights_dir, log=log)
    except UnknownName as err:
        raise UsageError(f"{option} {value}: no such file, and {err}") from None
    except (WeightsUnavailable, VerificationFailed) as err:
        raise UsageError(f"{option} {value}: {err}") from None
