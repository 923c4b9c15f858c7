"""How every command reports a user's mistake or a failure of the machine: one line, a known exit code.

* ``UsageError``: a bad option value or a bad file named on the command line; ``error: <text>``, exit 2.
* ``guarded(main)``: runs a command's ``main`` and turns what a user or the environment can cause (usage errors,
  unusable checkpoints, OS errors such as a full disk or a read-only folder, Ctrl-C, a SIGTERM that reached a
  download) into that one line, so that a traceback is only ever seen for a bug in this package.
"""
from __future__ import annotations

import errno
import functools
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..interrupts import Interrupted

EXIT_USAGE = 2
EXIT_SIGINT = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM


class UsageError(Exception):
    """One line for the user; the command exits with status 2."""


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def describe_os_error(err: OSError) -> str:
    """``<file>: <reason>`` without Python's ``[Errno N]`` decoration; a full disk says so plainly."""
    where = err.filename if err.filename is not None else ""
    if err.errno == errno.ENOSPC:
        reason = "no space left on the device (free some, then rerun: finished outputs are kept)"
    elif err.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif err.errno == errno.EROFS:
        reason = "read-only file system"
    else:
        reason = err.strerror or str(err).splitlines()[0]
    return f"{where}: {reason}" if where else reason


def _one_line_failures() -> tuple[type, ...]:
    """The failures that are the user's to fix and say themselves in one line. Imported when a failure arrives,
    not when a command starts: ``--help`` must not pay for torch (the checkpoint modules need it)."""
    from ..flow.checkpoint import FlowCheckpointError
    from ..stylegan.checkpoint_errors import CheckpointError

    return UsageError, CheckpointError, FlowCheckpointError


def guarded(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap a command's ``main`` so that user and environment failures end in one line and an exit code."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except UsageError as err:
            return fail(str(err))
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_SIGINT
        except Interrupted as err:  # commands report their own stops; this one came before (a download)
            said, name = str(err), signal.Signals(err.signum).name
            print(f"interrupted ({name})" + ("" if said == name else f": {said}"), file=sys.stderr)
            return err.exit_code
        except OSError as err:
            return fail(describe_os_error(err))
        except ValueError as err:
            if isinstance(err, _one_line_failures()):
                return fail(str(err))
            raise

    return wrapper


# ---------------------------------------------------------------------- option checks (before any work)

def check_int(option: str, value: int | None, minimum: int | None = None, maximum: int | None = None,
              *, allow_none: bool = True) -> None:
    if value is None:
        if allow_none:
            return
        raise UsageError(f"{option} is required")
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        allowed = (f"an integer >= {minimum}" if maximum is None else
                   f"an integer from {minimum} to {maximum}" if minimum is not None else f"an integer <= {maximum}")
        raise UsageError(f"{option} {value}: must be {allowed}")


def check_float(option: str, value: float | None, *, positive: bool = False, non_negative: bool = False,
                at_most: float | None = None) -> None:
    if value is None:
        return
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
        next(os.scandir(folder), None)
    except OSError as err:
        raise UsageError(f"{option} {folder}: cannot be read ({describe_os_error(err).split(': ')[-1]})") from None


def check_output_dir(option: str, folder: Path, *, not_equal: dict[str, Path | None] = ()) -> None:
    """A folder we may create or write into, different from every input folder in ``not_equal``."""
    resolved = folder.resolve()
    for other_option, other in dict(not_equal).items():
        if other is not None and resolved == other.resolve():
            raise UsageError(f"{option} {folder}: must differ from {other_option} (inputs are never overwritten)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder}: exists and is not a folder")
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: {existing} is not writable")
