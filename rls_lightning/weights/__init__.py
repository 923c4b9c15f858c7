"""Pretrained files by name: the registry, verified downloads into the torch hub cache, offline mode and mirrors.

    python -m rls_lightning.cli.weights list | fetch NAME... | verify
"""
from __future__ import annotations

import sys
from pathlib import Path

from .limits import LimitSettingError
from .registry import BY_NAME, FILES, GENERATOR_NAMES, PretrainedFile, UnknownName, lookup
from .store import WeightsUnavailable, ensure, offline_requested
from .verification import VerificationFailed

__all__ = ["FILES", "BY_NAME", "GENERATOR_NAMES", "PretrainedFile", "UnknownName", "WeightsUnavailable",
           "VerificationFailed", "GeneratorUnavailable", "LimitSettingError", "ensure", "lookup",
           "offline_requested", "resolve_generator", "is_registry_name"]


class GeneratorUnavailable(ValueError):
    """A generator given by registry name that cannot be had (an unknown name, a file that is neither here nor
    downloadable, or one that fails verification); the message is one line naming the option and the value."""


def is_registry_name(value: str | Path) -> bool:
    """A bare word (no folder, no file suffix) that the user meant as a registry name."""
    text = str(value)
    return "/" not in text and "\\" not in text and Path(text).suffix == "" and not Path(text).exists()


def resolve_generator(value: str | Path, option: str = "--generator", weights_dir: str | Path | None = None,
                      log=lambda line: print(line, file=sys.stderr)) -> Path:
    """A generator checkpoint given as a path or a registry name (``ffhq-1024``): the path, or the verified
    cached download of the named file. Raises ``GeneratorUnavailable`` with one line otherwise."""
    if not is_registry_name(value):
        return Path(value)
    try:
        entry = lookup(str(value), "generator")
        return ensure(entry, weights_dir, log=log)
    except UnknownName as err:
        raise GeneratorUnavailable(f"{option} {value}: no such file, and {err}") from None
    except (WeightsUnavailable, VerificationFailed) as err:
        said = str(err)  # the store names the file first ("ffhq-1024: ..."): the option names it once
        said = said[len(f"{value}: "):] if said.startswith(f"{value}: ") else said
        raise GeneratorUnavailable(f"{option} {value}: {said}") from None
