"""File names as the file system allows them, shown and checked safely.

POSIX allows any bytes but ``/`` and NUL in a name: bytes that are not UTF-8 (Python keeps them as lone surrogates,
``os.fsdecode``'s surrogateescape), newlines, terminal control characters. Such a name must never stop a run: it
cannot be encoded to a UTF-8 log or CSV file as it is, and a newline in it would forge a second line in a log. So
every name shown to the user, or written into a row, goes through ``printable`` (a CSV file's rows through
``csv_text``); the name itself is kept unchanged for opening the file.
"""
from __future__ import annotations

import csv
import io
import os
import shlex
import unicodedata

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
DEFAULT_NAME_MAX = 255  # bytes: ext4, XFS, btrfs, APFS, NTFS (in UTF-16 units there)


def printable(value: str | bytes | os.PathLike) -> str:
    """``value`` with every byte that is not UTF-8 written as ``\\xNN`` and every control or invisible
    format character as ``\\n``, ``\\t``, ``\\xNN`` or ``\\uNNNN``: encodable anywhere and one line long."""
    text = os.fsdecode(os.fspath(value))
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, kept by surrogateescape
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # any other lone surrogate cannot be encoded either
            shown.append(f"\\u{code:04x}")
        elif char in _ESCAPES:
            shown.append(_ESCAPES[char])
        elif unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            shown.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            shown.append(char)
    return "".join(shown)


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as CSV text with a header of ``columns`` (other keys left out). Every text cell goes through
    ``printable`` (one line, encodable), and one that a spreadsheet would run as a formula (starting with ``=``,
    ``+``, ``-`` or ``@``: a file may be named ``=HYPERLINK(...)``) gets a leading ``'``, which spreadsheets show
    as plain text (OWASP, "CSV Injection"); numbers, and text of numbers such as a face's box, stay as they are."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _cell(value: object) -> object:
    if not isinstance(value, str):
        return value
    shown = printable(value)
    return "'" + shown if shown.startswith(("=", "+", "-", "@")) and not _numbers(shown) else shown


def _numbers(text: str) -> bool:
    """Whether ``text`` is numbers separated by spaces (a face's box ``-3.0 20.1 40.0 61.2``): data, not a formula."""
    parts = text.split()
    try:
        [float(part) for part in parts]
    except ValueError:
        return False
    return bool(parts)


def name_max(folder: str | os.PathLike) -> int:
    """The longest file name, in bytes, that ``folder``'s file system accepts (255 where it does not say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # the folder does not exist yet, or no pathconf (Windows)
        return DEFAULT_NAME_MAX


def name_bytes(name: str) -> int:
    """Length of ``name`` on disk: its bytes in the file system's encoding (not its number of characters)."""
    return len(os.fsencode(name))


def train_flow_command(generator: str | os.PathLike) -> str:
    """The command that trains a flow prior for ``generator``, ready to paste into a shell."""
    return f"python train_flow.py --generator {shlex.quote(os.fspath(generator))}"
