"""One verified download: streamed to a temporary file beside the target, hashed on the way, checked, then renamed.

A partial or corrupt file is never left behind under the target's name: every failure (server error, timeout,
connection dropped half-way, more bytes than allowed, the deadline passed, wrong size or hash, Ctrl-C, SIGTERM)
removes the temporary file before the error propagates. The limits (``limits.DownloadLimits``) are enforced as the
bytes arrive: a server announcing more than the limit is refused before its body is read, and one sending more is
cut off at the first byte over it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ..interrupts import Interrupted
from . import partial_files
from .limits import DEADLINE_VARIABLE, DownloadLimits, limits_for
from .verification import VerificationFailed, check_content, check_digest

if TYPE_CHECKING:
    from .registry import PretrainedFile

CHUNK = 1 << 20
USER_AGENT = "rls-lightning weights downloader"


class DownloadFailed(OSError):
    """One URL could not give the file; ``reason`` is a short text for the one-line message."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class DownloadInterrupted(Interrupted):
    """SIGTERM (or another handled signal) stopped a download; its partial file is already removed."""

    def __init__(self, signum: int, entry: "PretrainedFile", url: str) -> None:
        super().__init__(signum)
        self.args = (f"{entry.name}: the download of {entry.filename} from {url} was stopped and its partial file "
                     f"removed",)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _describe(err: BaseException) -> str:
    if isinstance(err, urllib.error.HTTPError):
        lines = str(err.reason).splitlines()
        if len(lines) > 1 and 300 <= err.code < 400:  # urllib's explanation of a redirect loop spans three lines
            return f"redirects in a loop (the last: HTTP {err.code} {lines[-1].strip()})"
        return f"server answered HTTP {err.code} {_one_line(err.reason)}"
    if isinstance(err, urllib.error.URLError):
        reason = err.reason
        if isinstance(reason, OSError) and reason.strerror:
            return f"no connection ({reason.strerror})"
        return f"no connection ({_one_line(reason)})"
    if isinstance(err, TimeoutError):
        return "timed out"
    return f"{type(err).__name__}: {_one_line(err)}" if str(err) else type(err).__name__


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Interrupted`` (once) so that the partial file is removed on the way out,
    where it would otherwise end the process on the spot. A handler someone installed (``StopRequests``) is left
    in place, and so are signals outside the main thread, where Python cannot install handlers."""
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL or threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def stop(signum, frame) -> None:
        nonlocal raised
        if not raised:  # a second SIGTERM must not cut short the removal the first one started
            raised = True
            raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def download(entry: "PretrainedFile", url: str, target: Path, *, limits: DownloadLimits | None = None,
             progress: Callable[[int, int | None], None] | None = None) -> str:
    """Fetch ``url`` into ``target`` for ``entry``; returns the file's sha256. Raises ``DownloadFailed`` (network,
    limits), ``VerificationFailed`` (the bytes are not the entry's) or ``DownloadInterrupted`` (SIGTERM); in every
    case nothing is left at ``target`` or beside it. ``limits``: default ``limits.limits_for(entry)``.
    ``progress(received, total)`` is called after every chunk (total: None when unknown)."""
    limits = limits_for(entry) if limits is None else limits
    target.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_raises():
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=partial_files.prefix(target.name),
                                             suffix=partial_files.SUFFIX)
        try:
            with os.fdopen(handle, "wb") as out:
                sha256, received, total = _stream(url, out, limits, progress)
            if total is not None and received != total:
                raise DownloadFailed(url, f"connection closed after {received} of {total} bytes")
            check_digest(entry, url, sha256, received)
            if not entry.verifiable_by_hash:
                try:
                    check_content(entry, Path(temporary))
                except VerificationFailed as err:
                    raise VerificationFailed(str(err).replace(temporary, url)) from None
            os.replace(temporary, target)
            return sha256
        except Interrupted as err:
            Path(temporary).unlink(missing_ok=True)
            raise DownloadInterrupted(err.signum, entry, url) from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _stream(url: str, out, limits: DownloadLimits, progress) -> tuple[str, int, int | None]:
    digest = hashlib.sha256()
    received = 0
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=limits.timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > limits.max_bytes:
                raise DownloadFailed(url, f"the server announces {total} bytes, more than {limits.max_bytes} "
                                          f"({limits.why}); refused before reading")
            # read1: one system call per read, so a server dripping bytes still reaches the deadline check
            read = getattr(response, "read1", response.read)
            while True:
                try:
                    block = read(min(CHUNK, limits.max_bytes - received + 1))
                except Interrupted:
                    raise
                except Exception as err:  # http.client.IncompleteRead, ConnectionResetError, timeouts
                    raise DownloadFailed(url, f"connection broken after {received} bytes "
                                              f"({_describe(err)})") from None
                if not block:
                    break
                if received + len(block) > limits.max_bytes:
                    raise DownloadFailed(url, f"sent more than {limits.max_bytes} bytes ({limits.why}); stopped")
                out.write(block)
                digest.update(block)
                received += len(block)
                if progress is not None:
                    progress(received, total)
                if time.monotonic() - started > limits.deadline:
                    raise DownloadFailed(url, f"not finished within the deadline of {limits.deadline:g} s "
                                              f"({DEADLINE_VARIABLE}) after {received} bytes; stopped")
    except DownloadFailed:
        raise
    except (urllib.error.URLError, OSError, ValueError) as err:  # ValueError: a malformed URL
        raise DownloadFailed(url, _describe(err)) from None
    return digest.hexdigest(), received, total
