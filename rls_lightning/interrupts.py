"""SIGINT / SIGTERM that stop a long command at a safe point instead of mid-write or with a traceback.

``StopRequests`` installs handlers for both signals. Outside ``deferred()`` (start-up, model loading) a signal raises
``Interrupted`` at once; inside it (the optimisation) the first signal is only recorded, the work polls
``requested`` between optimiser steps and stops there, and a second signal raises at once for a user who does not
want to wait. The exit status is the shell's convention, 128 + the signal number (130, 143), so that a scheduler
never records an interrupted job as a success.

``Interrupted`` derives from ``BaseException``, like ``KeyboardInterrupt``: a stop is never a property of the file
being read when it arrives, so the ``except Exception`` that turns any failure of a hostile file into one line
(checkpoint loading, image decoding, a summary) must not catch it. It did, and a signal during loading was reported
as "not a usable generator checkpoint", or during the reading of inputs as one bad image, the run going on.

``for_process`` covers the rest of a command's life: from the first line of its script to the last instant of the
interpreter's exit, a signal ends it with 130 / 143 and one line, never a traceback. A signal that comes during an
import is raised once the import is done (``_put_off``): torch's C++ start-up cannot carry an exception out. A
raised stop can also be dropped on its way out by C code that clears errors (an unclosed ``os.scandir``
iterator's finalizer restores the error it saved over the new one), and a run then went on to exit 0: the stop is
kept too (``_stopped_by``), ``StopRequests`` takes it over and ``for_process`` exits with it.
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Callable, Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)
_stopped_by: int | None = None  # the first signal for_process's handler raised, in case its exception was dropped


class Interrupted(BaseException):
    """The command was stopped by ``signum``; ``exit_code`` is 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopRequests:
    """Context manager owning the SIGINT / SIGTERM handlers of the main thread while a command runs."""

    def __init__(self) -> None:
        self.requested: int | None = None  # the first signal received, if any
        self._deferring = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self._deferring and self.requested is None:
            self.requested = signum
            return
        self.requested = self.requested or signum
        raise Interrupted(signum)

    def __enter__(self) -> "StopRequests":
        for signum in HANDLED:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (e.g. called from a worker): leave signals alone
                break
        else:
            self.requested = self.requested or _stopped_by  # a stop asked for before, even if its raise was lost
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within this block the first signal is recorded instead of raised."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def check(self) -> None:
        """Raise ``Interrupted`` if a signal was recorded (call at safe points)."""
        if self.requested is not None:
            raise Interrupted(self.requested)


def _importing(frame) -> bool:
    """Whether ``frame`` (where a signal found the main thread) runs inside an import."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _put_off(signum: int, frame) -> bool:
    """Put a signal off when it arrives during an import, and deliver it again 50 ms later (True if so). torch's C++
    start-up imports Python modules itself (pybind11): an exception raised inside them cannot cross its C++ frames,
    and the process aborted ("terminate called after throwing an instance of 'pybind11::error_already_set'")
    instead of exiting 130 / 143. Imports are short; the signal is raised once the import is done."""
    if not _importing(frame):
        return False
    timer = threading.Timer(0.05, _deliver_again, (signum,))
    timer.daemon = True
    timer.start()
    return True


def _deliver_again(signum: int) -> None:
    """The put-off signal, unless its stop was taken over meanwhile: by a ``StopRequests`` (which took it as its
    first request; sent again, it would count as a second and cut the current step short), or by ``for_process``
    once the command returned."""
    if signal.getsignal(signum) is _raise_interrupted:
        os.kill(os.getpid(), signum)


def _raise_interrupted(signum, frame) -> None:
    global _stopped_by
    _stopped_by = _stopped_by or signum  # kept before anything else: a command that returns at once exits with it
    if not _put_off(signum, frame):
        raise Interrupted(signum)


def _exit_at_once(signum, frame) -> None:
    """After the command has returned, nothing is left to stop safely: leave with the signal's status, quietly."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(128 + signum)


def for_process(main: Callable[[], int]) -> None:
    """Run a command's ``main`` as the whole process: a signal raises ``Interrupted`` until ``main`` returns
    (commands catch it and report the stop; ``StopRequests`` refines it while they work), and after that exits at
    once with 130 / 143 rather than printing a traceback from the interpreter's shutdown (threads being joined,
    buffers flushed). Never returns."""
    for signum in HANDLED:
        signal.signal(signum, _raise_interrupted)
    said = None
    try:
        code = main()
    except Interrupted as err:  # before the command's own handling started (its imports, its argument parsing)
        said, code = f"interrupted ({signal.Signals(err.signum).name}) before start-up finished", err.exit_code
    for signum in HANDLED:  # from here a signal ends the process at once, even while the lines below are printed
        signal.signal(signum, _exit_at_once)
    if _stopped_by is not None and code not in {128 + signum for signum in HANDLED}:  # never raised, or dropped
        said, code = f"interrupted ({signal.Signals(_stopped_by).name})", 128 + _stopped_by
    if said is not None:
        print(said, file=sys.stderr)
    # The interpreter's own shutdown puts the default handlers back before its last steps, and a signal then kills
    # the process (-2, -15) instead of exiting 130 / 143: what it would do that matters is done here, then _exit.
    atexit._run_exitfuncs()
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
