"""One verified download: streamed to a temporary file beside the target, hashed on the way, checked, then renamed.

A partial or corrupt file is never left behind under the target's name: every failure (server error, timeout,
connection dropped half-way, more bytes than allowed, the deadline passed, wrong size or hash, Ctrl-C, SIGTERM)
removes the temporary file before the error propagates. The limits (``limits.DownloadLimits``) are enforced as the
bytes arrive: a server announcing more than the limit is refused before its body is read, and one sending more is
cut off at the first byte over it.

The deadline covers the whole fetch, from the first connection to the last byte, every redirect included: each
connect, TLS handshake and read of every hop is given a socket timeout of the per-read timeout or the time left,
whichever is shorter, so a server that drips its status line, its headers or a chain of slow redirects is stopped
at the deadline like one that drips its body. (Only the name lookup, which Python cannot bound, may hold it longer.)
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import io
import os
import signal
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from ..interrupts import Interrupted
from . import partial_files
from .limits import DEADLINE_VARIABLE, DownloadLimits, limits_for
from .verification import VerificationFailed, check_content, check_digest

if TYPE_CHECKING:
    from .registry import PretrainedFile

CHUNK = 1 << 20
USER_AGENT = "rls-lightning weights downloader"
_SLACK = 0.05  # seconds: a socket timeout this close to the deadline was the deadline's, whatever its cause

_T = TypeVar("_T")


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


class _DeadlinePassed(Exception):
    """Raised inside urllib and http.client when a fetch runs out of time. Not an ``OSError``, so that neither wraps
    it into an error of their own (``URLError``, a retry of the next address) on its way out to ``_stream``."""


class _Deadline:
    """The one clock of a fetch, shared by all the connections its redirects open."""

    def __init__(self, seconds: float) -> None:
        self.ends = time.monotonic() + seconds
        self.connections = 0  # opened so far: the first, then one for each redirect followed
        self.stage = "while connecting"  # for the message, should the time run out before the body

    def left(self) -> float:
        return self.ends - time.monotonic()

    def timeout(self, per_read: float | None) -> float:
        """The socket timeout for the next operation: ``per_read`` (None: no per-read limit), cut to the time left.
        Raises ``_DeadlinePassed`` when nothing is left."""
        left = self.left()
        if left <= 0:
            raise _DeadlinePassed
        return left if per_read is None else min(per_read, left)

    def blame(self) -> None:
        """Called on a socket timeout: raises ``_DeadlinePassed`` when the deadline is what cut it short."""
        if self.left() <= _SLACK:
            raise _DeadlinePassed from None

    def run(self, sock: socket.socket, per_read: float | None, operation: Callable[..., _T], *args: Any) -> _T:
        """``operation(*args)``, a blocking call on ``sock``, given at most ``per_read`` seconds and the time left."""
        sock.settimeout(self.timeout(per_read))
        try:
            return operation(*args)
        except socket.timeout:
            self.blame()
            raise


class _ReaderWithinDeadline(io.RawIOBase):
    """The raw stream under an ``HTTPResponse``: http.client reads the status line and headers with ``readline``,
    which loops over ``readinto`` here, so every byte of a dripping server passes the clock."""

    def __init__(self, sock: socket.socket, clock: _Deadline, per_read: float | None) -> None:
        super().__init__()
        self._sock = sock
        # The socket's own reader, so that the connection's close() waits for this one, as with sock.makefile().
        self._raw = sock.makefile("rb", buffering=0)
        self._clock = clock
        self._per_read = per_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int | None:
        return self._clock.run(self._sock, self._per_read, self._raw.readinto, buffer)

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _SocketForResponse:
    """What an ``HTTPResponse`` is built on: it only calls ``makefile``, here a reader bounded by the clock."""

    def __init__(self, sock: socket.socket, clock: _Deadline, per_read: float | None) -> None:
        self._sock = sock
        self._clock = clock
        self._per_read = per_read

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_ReaderWithinDeadline(self._sock, self._clock, self._per_read))


class _ConnectionWithinDeadline:
    """Mixed into http.client's connections: connects, handshakes and answers (a proxy's to CONNECT included) run
    on the fetch's clock."""

    def __init__(self, *args: Any, clock: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock
        # http.client's hook for opening the socket: socket.create_connection would give every address of the
        # host the full timeout, however little time is left.
        self._create_connection = self._open_socket

    def _open_socket(self, address: tuple[str, int], timeout: float | None,
                     source_address: tuple[str, int] | None = None) -> socket.socket:
        self._clock.connections += 1
        self._clock.stage = "while connecting"
        per_read = timeout if isinstance(timeout, (int, float)) else None  # not socket's default-timeout marker
        host, port = address
        failure: OSError = OSError(f"no address for {host}")
        for family, kind, protocol, _, sockaddr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, protocol)
            try:
                if source_address:
                    sock.bind(source_address)
                self._clock.run(sock, per_read, sock.connect, sockaddr)
                sock.settimeout(self._clock.timeout(per_read))  # the TLS handshake that may follow gets what is left
                return sock
            except OSError as err:  # refused, unreachable: the next address may answer, as create_connection does
                sock.close()
                failure = err
            except BaseException:
                sock.close()
                raise
        raise failure

    def connect(self) -> None:
        try:
            super().connect()
        except socket.timeout:  # the TLS handshake's, after the socket was open
            self._clock.blame()
            raise

    def response_class(self, sock: socket.socket, *args: Any, **kwargs: Any) -> http.client.HTTPResponse:
        """Stands in for http.client's class attribute of the same name, which ``getresponse`` calls."""
        self._clock.stage = "before the headers were complete"
        return http.client.HTTPResponse(_SocketForResponse(sock, self._clock, self.timeout), *args, **kwargs)


class _HTTPConnection(_ConnectionWithinDeadline, http.client.HTTPConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, clock: _Deadline) -> None:
        super().__init__()
        self._clock = clock

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, clock=self._clock), req)


_handlers: list[type] = [_HTTPHandler]

if hasattr(http.client, "HTTPSConnection"):  # Python built without ssl: http only, as urllib itself
    class _HTTPSConnection(_ConnectionWithinDeadline, http.client.HTTPSConnection):
        pass

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def __init__(self, clock: _Deadline) -> None:
            super().__init__()
            self._clock = clock

        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(functools.partial(_HTTPSConnection, clock=self._clock), req, context=self._context)

    _handlers.append(_HTTPSHandler)


def _opener(clock: _Deadline) -> urllib.request.OpenerDirector:
    """urllib's usual opener (proxies, redirects, file:// URLs), its http and https connections on ``clock``."""
    return urllib.request.build_opener(*(handler(clock) for handler in _handlers))


def _too_late(limits: DownloadLimits, where: str) -> str:
    return f"not finished within the deadline of {limits.deadline:g} s ({DEADLINE_VARIABLE}) {where}; stopped"


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
    clock = _Deadline(limits.deadline)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with _opener(clock).open(request, timeout=limits.timeout) as response:
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
                except _DeadlinePassed:
                    raise DownloadFailed(url, _too_late(limits, f"after {received} bytes")) from None
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
                if clock.left() < 0:  # the sockets stop themselves; this is for file:// URLs, which have none
                    raise DownloadFailed(url, _too_late(limits, f"after {received} bytes"))
    except DownloadFailed:
        raise
    except _DeadlinePassed:
        redirects = clock.connections - 1
        followed = f", after {redirects} redirect{'s' if redirects != 1 else ''}" if redirects > 0 else ""
        raise DownloadFailed(url, _too_late(limits, clock.stage + followed)) from None
    except (urllib.error.URLError, OSError, ValueError) as err:  # ValueError: a malformed URL
        raise DownloadFailed(url, _describe(err)) from None
    return digest.hexdigest(), received, total
