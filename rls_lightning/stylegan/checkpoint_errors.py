"""The one error type every checkpoint reader raises: it names the file and the reason."""
from __future__ import annotations

import os


class CheckpointError(ValueError):
    """A generator checkpoint could not be used. ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason
