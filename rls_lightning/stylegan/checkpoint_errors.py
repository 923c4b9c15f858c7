"""The one error type every checkpoint reader raises: it names the file and the reason, on one line."""
from __future__ import annotations

import os
import re

# Colour and cursor sequences (torch's own messages contain "\x1b[1m ... \x1b[0m").
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")


def one_line(text: str) -> str:
    """``text`` without ANSI escape sequences, with every run of whitespace (newlines, tabs) made one space and
    other control characters written as escapes: a message of a file's content must stay one terminal line."""
    text = " ".join(_ANSI_ESCAPE.sub("", text).split())
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def printable_path(path: str | os.PathLike) -> str:
    """The path as given, with control characters (a newline in a file name) written as escapes."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in os.fspath(path))


class CheckpointError(ValueError):
    """A generator checkpoint could not be used. ``str(err)`` is ``"<path>: <reason>"``, one line."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = one_line(reason)
        super().__init__(f"{printable_path(path)}: {self.reason}")
