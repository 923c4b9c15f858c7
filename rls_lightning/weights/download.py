"""One verified download: streamed to a temporary file beside the target, hashed on the way, checked, then renamed.

A partial or corrupt file is never left behind under the target's name: every failure (server error, timeout,
connection dropped half-way, wrong size or hash, Ctrl-C) removes the temporary file before the error propagates.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .verification import VerificationFailed, check_content, check_digest

if TYPE_CHECKING:
    from .registry import PretrainedFile

CHUNK = 1 << 20
DEFAULT_TIMEOUT = 60.0  # seconds without a byte before a stalled connection is given up
USER_AGENT = "rls-lightning weights downloader"


class DownloadFailed(OSError):
    """One URL could not give the file; ``reason`` is a short text for the one-line message."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"server answered HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        reason = err.reason
        if isinstance(reason, OSError) and reason.strerror:
            return f"no connection ({reason.strerror})"
        return f"no connection ({reason})"
    if isinstance(err, TimeoutError):
        return "timed out"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def download(entry: "PretrainedFile", url: str, target: Path, *, timeout: float = DEFAULT_TIMEOUT,
             progress: Callable[[int, int | None], None] | None = None) -> str:
    """Fetch ``url`` into ``target`` for ``entry``; returns the file's sha256. Raises ``DownloadFailed`` (network)
    or ``VerificationFailed`` (the bytes are not the entry's); in both cases nothing is left at ``target`` or
    beside it. ``progress(received, total)`` is called after every chunk (total: None when unknown)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            sha256, received, total = _stream(url, out, timeout, progress)
        if total is not None and received != total:
            raise DownloadFailed(url, f"connection closed after {received} of {total} bytes")
        check_digest(entry, Path(url), sha256, received)
        if not entry.verifiable_by_hash:
            try:
                check_content(entry, Path(temporary))
            except VerificationFailed as err:
                raise VerificationFailed(str(err).replace(temporary, url)) from None
        os.replace(temporary, target)
        return sha256
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _stream(url: str, out, timeout: float, progress) -> tuple[str, int, int | None]:
    digest = hashlib.sha256()
    received = 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while True:
                try:
                    block = response.read(CHUNK)
                except Exception as err:  # http.client.IncompleteRead, ConnectionResetError, timeouts
                    raise DownloadFailed(url, f"connection broken after {received} bytes "
                                              f"({_describe(err)})") from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                received += len(block)
                if progress is not None:
                    progress(received, total)
    except DownloadFailed:
        raise
    except (urllib.error.URLError, OSError, ValueError) as err:  # ValueError: a malformed URL
        raise DownloadFailed(url, _describe(err)) from None
    return digest.hexdigest(), received, total
