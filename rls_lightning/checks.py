"""Checks of the values a user gives (a command's options, the page's fields), each failing with one
``UsageError`` line that names the option as the user knows it, the value and what is allowed. Shared by the
shells (``cli``, ``app``), below them so that neither imports the other; each shell words the line for its
users (a command exits 2, the page shows it)."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Sequence

from .errors import describe_os_error


class UsageError(Exception):
    """One line for the user; a command exits with status 2."""


def check_int(option: str, value: int | None, minimum: int | None = None, maximum: int | None = None,
              *, allow_none: bool = True) -> None:
    if value is None:
        if allow_none:
            return
        raise UsageError(f"{option} is required")
    whole = isinstance(value, int) and not isinstance(value, bool)  # a page or a caller may hand over 2.5 or True
    if not whole or minimum is not None and value < minimum or maximum is not None and value > maximum:
        allowed = ("an integer" if minimum is None and maximum is None else
                   f"an integer >= {minimum}" if maximum is None else
                   f"an integer from {minimum} to {maximum}" if minimum is not None else f"an integer <= {maximum}")
        raise UsageError(f"{option} {value}: must be {allowed}")


def check_float(option: str, value: float | None, *, positive: bool = False, non_negative: bool = False,
                at_most: float | None = None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{option} {value!r}: must be a number")
    if not math.isfinite(value):
        raise UsageError(f"{option} {value}: must be a finite number")
    if positive and value <= 0:
        raise UsageError(f"{option} {value}: must be greater than 0")
    if non_negative and value < 0:
        raise UsageError(f"{option} {value}: must be 0 or more")
    if at_most is not None and value > at_most:
        raise UsageError(f"{option} {value}: must be at most {at_most}")


def check_choice(option: str, value: str | None, choices: Iterable[str]) -> None:
    choices = list(choices)
    if value is not None and value not in choices:
        raise UsageError(f"{option} {value}: must be one of {', '.join(choices)}")


ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


def check_hardware(accelerator: str, devices: int = 1, num_nodes: int = 1, precision: str | None = None,
                   *, precision_choices: Sequence[str] = PRECISIONS) -> None:
    """The Trainer options every command shares, checked before a model is loaded."""
    check_choice("--accelerator", accelerator, ACCELERATORS)
    check_int("--devices", devices, 1)
    check_int("--num-nodes", num_nodes, 1)
    check_choice("--precision", precision, precision_choices)
    if accelerator in ("gpu", "cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError(f"--accelerator {accelerator}: no CUDA GPU is visible on this machine (use cpu or auto)")
        if devices > torch.cuda.device_count():
            raise UsageError(f"--devices {devices}: only {torch.cuda.device_count()} GPU(s) visible")


def check_input_dir(option: str, folder: Path | None, *, required: bool = True) -> None:
    """An existing, listable folder."""
    if folder is None:
        if required:
            raise UsageError(f"{option} is required")
        return
    if not folder.exists():
        raise UsageError(f"{option} {folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{option} {folder}: not a folder")
    try:
        with os.scandir(folder) as entries:  # closed here: an unclosed one's finalizer can drop a signal's stop
            next(entries, None)
    except OSError as err:
        raise UsageError(f"{option} {folder}: cannot be read ({describe_os_error(err).split(': ')[-1]})") from None


def check_run_folders(inputs: dict[str, Path | None], out_option: str, out_dir: Path) -> None:
    """The folders of a run, each by the name its caller knows it by: the first of ``inputs`` (option -> folder) a
    readable folder, the others (ground truth) too where given, and ``out_dir`` writable and none of them (inputs
    are never written into)."""
    for k, (option, folder) in enumerate(inputs.items()):
        check_input_dir(option, folder, required=k == 0)
    check_output_dir(out_option, out_dir, not_equal=inputs)


def _same_folder(a: Path, b: Path) -> bool:
    """Whether two existing paths are one folder under different spellings (``Faces`` and ``faces`` on a
    case-insensitive disk, a bind mount): same device and inode."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_output_dir(option: str, folder: Path, *, not_equal: dict[str, Path | None] = ()) -> None:
    """A folder we may create or write into, different from every input folder in ``not_equal``."""
    resolved = folder.resolve()
    for other_option, other in dict(not_equal).items():
        if other is not None and (resolved == other.resolve() or _same_folder(folder, other)):
            raise UsageError(f"{option} {folder}: must differ from {other_option} (inputs are never overwritten)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: exists and is not a folder")
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: {existing} is not writable")
