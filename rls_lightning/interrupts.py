"""SIGINT / SIGTERM that stop a long command at a safe point instead of mid-write or with a traceback.

``StopRequests`` installs handlers for both signals. Outside ``deferred()`` (start-up, model loading) a signal raises
``Interrupted`` at once; inside it (the optimisation) the first signal is only recorded, the work polls
``requested`` between optimiser steps and stops there, and a second signal raises at once for a user who does not
want to wait. The exit status is the shell's convention, 128 + the signal number (130, 143), so that a scheduler
never records an interrupted job as a success.
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
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
