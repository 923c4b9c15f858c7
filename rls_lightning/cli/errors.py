"""How every command reports a user's mistake or a failure of the machine: one line, a known exit code.

* ``UsageError``: a bad option value or a bad file named on the command line; ``error: <text>``, exit 2.
* ``guarded(main)``: runs a command's ``main`` and turns what a user or the environment can cause (usage errors,
  unusable checkpoints, OS errors such as a full disk or a read-only folder, Ctrl-C, a SIGTERM that reached a
  download) into that one line, so that a traceback is only ever seen for a bug in this package.
"""
from __future__ import annotations

import functools
import signal
import sys
from typing import Callable

from ..checks import (ACCELERATORS, PRECISIONS, UsageError, check_choice, check_float,  # noqa: F401 - re-exported
                      check_hardware, check_input_dir, check_int, check_output_dir, check_run_folders)
from ..errors import describe_os_error  # noqa: F401 - the wording every command uses
from ..interrupts import Interrupted
from ..runtime import PRECISIONS as INVERSION_PRECISIONS
from ..runtime import precision_refusal, resolve_accelerator

EXIT_USAGE = 2
EXIT_SIGINT = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_SIGTERM = 143  # 128 + SIGTERM


def check_inversion_hardware(accelerator: str, devices: int, num_nodes: int, precision: str) -> None:
    """``check_hardware`` for an inversion (``invert.py``, the page): its precisions, and the pairs of accelerator
    and precision that cannot run (float16 autocast on the CPU, float64 on MPS), before any model is loaded."""
    check_hardware(accelerator, devices, num_nodes, precision, precision_choices=INVERSION_PRECISIONS)
    if problem := precision_refusal(resolve_accelerator(accelerator), precision):
        raise UsageError(f"--{problem}")


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _one_line_failures() -> tuple[type, ...]:
    """The failures that are the user's to fix and say themselves in one line. Imported when a failure arrives,
    not when a command starts: ``--help`` must not pay for torch (the checkpoint modules need it)."""
    from ..flow.checkpoint import FlowCheckpointError
    from ..stylegan.checkpoint_errors import CheckpointError
    from ..weights import GeneratorUnavailable, LimitSettingError

    return UsageError, CheckpointError, FlowCheckpointError, GeneratorUnavailable, LimitSettingError


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
