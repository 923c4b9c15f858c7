"""One writer per output folder: a second run on the same folder is told so instead of redoing every image."""
from __future__ import annotations

import contextlib
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
        """The lock file, never through a link: truncating it would empty whatever file it names. A lock file with
        other names (a folder copied with ``cp -al``, a snapshot made with ``rsync --link-dest``, or a hard link
        planted to have it emptied) is unlinked here and made anew, which leaves every other name's file as it
        is, and this folder's run no longer shares a lock with the other folder's."""
        for _ in range(2):  # a second try only if another run made the new one first
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as err:
                if err.errno != errno.ELOOP:
                    raise
                raise FolderBusy(f"{self.path}: is a link, not this tool's lock file; move it away") from None
            status = os.fstat(fd)
            if not stat.S_ISREG(status.st_mode):
                os.close(fd)
                raise FolderBusy(f"{self.path}: is not a regular file (a device or a FIFO), so not this tool's lock "
                                 "file; move it away")
            if status.st_nlink == 1:
                return fd
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                named = os.lstat(self.path)
                if (named.st_dev, named.st_ino) == (status.st_dev, status.st_ino):
                    os.unlink(self.path)
            with contextlib.suppress(FileExistsError):
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        raise FolderBusy(f"{self.path}: keeps being replaced by another file; move it away")

    def acquire(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FolderBusy(f"{self.path.parent}: in use by another run (process {holder}); wait for it to finish "
                             "or choose another --out-dir") from None
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
