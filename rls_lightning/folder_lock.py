"""One writer per output folder: a second run on the same folder is told so instead of redoing every image."""
from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path


class FolderBusy(Exception):
    """Another process holds the folder's lock, or its lock file is not one (a link, not a regular file);
    ``str(err)`` says which, in one line."""


class FolderLock:
    """Exclusive ``flock`` on ``folder/.lock`` (released by the kernel when the process dies, so a killed run never
    leaves a stale lock). The file keeps the holder's process id, only for the message."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fd: int | None = None

    def _open(self) -> int:
        """The lock file, never through a link (truncating it would empty whatever file it names), and only a
        regular file."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            raise FolderBusy(f"{self.path}: is a link, not this tool's lock file; move it away") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FolderBusy(f"{self.path}: is not a regular file (a device or a FIFO), so not this tool's lock "
                             "file; move it away")
        return fd

    def _still_named(self, status: os.stat_result) -> bool:
        """Whether ``.lock`` still names the file of ``status`` (another run may have made it anew meanwhile)."""
        try:
            named = os.lstat(self.path)
        except FileNotFoundError:
            return False
        return (named.st_dev, named.st_ino) == (status.st_dev, status.st_ino)

    def acquire(self) -> "FolderLock":
        """Lock the folder, or raise ``FolderBusy``. A lock file with other names (a folder copied with ``cp -al``,
        a snapshot made with ``rsync --link-dest``, or a hard link planted to have it emptied) is taken only once
        no run holds it, then unlinked and made anew: the file under its other names is left as it is, and this
        folder's runs no longer share a lock with the other folder's."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # again only if the file was replaced between its opening and its locking
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise FolderBusy(f"{self.path.parent}: in use by another run (process {holder}); wait for it to "
                                 "finish or choose another --out-dir") from None
            status = os.fstat(fd)
            if status.st_nlink == 1 and self._still_named(status):
                break
            if status.st_nlink > 1 and self._still_named(status):
                os.unlink(self.path)  # only this name: the file keeps its others, untouched
            os.close(fd)
        else:
            raise FolderBusy(f"{self.path}: keeps being replaced by another file; move it away")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
