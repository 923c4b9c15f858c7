"""The one error type every checkpoint reader raises: it names the file and the reason, on one line."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from ..names import printable

# Colour and cursor sequences (torch's own messages contain "\x1b[1m ... \x1b[0m").
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")


def one_line(text: str) -> str:
    """``text`` without ANSI escape sequences, with every run of whitespace (newlines, tabs) made one space and
    other control characters written as escapes: a message of a file's content must stay one terminal line."""
    return printable(" ".join(_ANSI_ESCAPE.sub("", text).split()))


def printable_path(path: str | os.PathLike) -> str:
    """The path as given, with control characters (a newline in a file name) and bytes that are not UTF-8 written as
    escapes (``names.printable``)."""
    return printable(path)


class CheckpointError(ValueError):
    """A generator checkpoint could not be used. ``str(err)`` is ``"<path>: <reason>"``, one line."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = one_line(reason)
        super().__init__(f"{printable_path(path)}: {self.reason}")


def read_file_head(path: Path, size: int, error: Callable[[Path, str], Exception], what: str) -> bytes:
    """The first ``size`` bytes of ``path``, which must be a regular, readable, non-empty file; otherwise
    ``error(path, reason)`` is raised (``what``: the kind of file expected, for the folder case)."""
    if not path.exists():
        raise error(path, "no such file")
    if path.is_dir():
        raise error(path, f"a folder, not a {what}")
    if not path.is_file():
        raise error(path, "not a regular file")
    try:
        with open(path, "rb") as stream:
            head = stream.read(size)
    except OSError as err:
        raise error(path, f"cannot be read ({err.strerror or type(err).__name__})") from None
    if not head:
        raise error(path, "empty file (0 bytes)")
    return head
