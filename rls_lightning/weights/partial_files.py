"""The temporary files of downloads in progress, named so that those of dead processes can be told apart and removed.

A download streams into ``.<file>~<machine>~<pid>~<random>.part`` beside its target, where ``<machine>`` is the
host name and, on Linux, the process-id namespace (containers sharing a host name and a folder count as other
machines). A process killed outright (SIGKILL, a power cut, a closed terminal) cannot remove its own; the next
download into the folder removes every such file of a registry file that names this machine and a process id no
longer running here. Nothing else is ever removed: not files of other names (the random part is
``tempfile.mkstemp``'s), not files of live processes or of other machines sharing the folder, not files of other
users, not links or folders. (A process id reused by an unrelated process keeps its file until that one ends.)
"""
from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path
from typing import Iterable

from ..atomic import writer_alive

SUFFIX = ".part"
_RANDOM = r"[a-z0-9_]{8}"  # tempfile.mkstemp's eight characters


def _this_machine() -> str:
    host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "localhost"  # no "~" in it
    try:
        return f"{host}-pidns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux: process ids are the host's
        return host


_MACHINE = _this_machine()


def prefix(filename: str) -> str:
    """``tempfile.mkstemp``'s prefix for a download of ``filename`` by this process."""
    return f".{filename}~{_MACHINE}~{os.getpid()}~"


def _owner_pid(name: str, filename: str) -> int | None:
    """The process id in ``name`` when it is one of our temporary names for ``filename`` made on this machine."""
    match = re.fullmatch(rf"\.{re.escape(filename)}~{re.escape(_MACHINE)}~(\d{{1,10}})~{_RANDOM}{re.escape(SUFFIX)}",
                         name)
    return int(match.group(1)) if match else None


def remove_stale(folder: Path, filenames: Iterable[str]) -> list[tuple[Path, int]]:
    """Remove the temporary files of dead downloads of ``filenames`` in ``folder``; returns (path, size) of each
    removed. A folder that cannot be listed, or a file that cannot be removed, is left as it is."""
    wanted = set(filenames)
    removed = []
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(".") and name.endswith(SUFFIX) and "~" in name):
            continue
        pid = next((pid for filename in wanted if (pid := _owner_pid(name, filename)) is not None), None)
        if pid is None or writer_alive(pid):  # this process's own downloads are running too
            continue
        path = folder / name
        try:
            info = path.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                continue
            path.unlink()
        except OSError:
            continue
        removed.append((path, info.st_size))
    return removed
