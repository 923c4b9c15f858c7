"""Outputs that are never half-written: write to a temporary sibling, then rename over the target."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator


MIN_FREE_BYTES = 1 << 20  # below this a failed write is taken for a full disk
_TEMPORARY_NAME_BYTES = 100  # of the target's name kept in its temporary's: any name that fits fits with it


def temporary_name(name: str) -> str:
    """``.<name>.tmp-<pid>-<12 hex>``: unique even across machines sharing a file system (two ranks may have the
    same process id); a long ``name`` is cut to its first bytes, so that a target name the file system accepts
    never fails for its temporary's length."""
    raw = os.fsencode(name)
    shown = os.fsdecode(raw[:_TEMPORARY_NAME_BYTES]) if len(raw) > _TEMPORARY_NAME_BYTES else name
    return f".{shown}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"


RECORD_BYTES = 1 << 20  # a progress row or list of our files: a few KB; anything larger was not written by us


def open_regular_file(path: str | os.PathLike) -> BinaryIO:
    """``path`` opened for reading as bytes, never through a link and only if it is a regular file (``OSError``
    otherwise): a FIFO or a device planted in an output folder would block or never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    return os.fdopen(fd, "rb")


def read_record_text(path: str | os.PathLike, limit: int = RECORD_BYTES) -> str:
    """The text of a small bookkeeping file this tool wrote (a progress row, the list of its restored photos),
    read without following a link and refused (``OSError``) when it is not a regular file or is over ``limit``
    bytes: one planted in an output folder as a link to ``/dev/zero`` or a FIFO would be read forever."""
    with open_regular_file(path) as file:
        if os.fstat(file.fileno()).st_size > limit:
            raise OSError(errno.EFBIG, "not a record of this tool (too large)", os.fspath(path))
        data = file.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, "not a record of this tool (too large)", os.fspath(path))
    return data.decode()


def writer_alive(pid: int) -> bool:
    """Whether the process whose id a temporary file's name carries (``temporary_name``, a download's part file)
    may still be writing it: True unless it is surely gone (another user's process, a number no process can have,
    or Windows, where ``os.kill(pid, 0)`` would terminate the process, are never judged dead)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path`` in one rename.

    On error the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temporary_name(path.name))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def torch_save_atomic(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` through ``atomic_write_path``. torch's zip writer reports a failed write (a full disk) as a
    ``RuntimeError`` without errno or file name; it is turned into the ``OSError`` it is, naming ``path``."""
    import torch

    with atomic_write_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as err:
            free = shutil.disk_usage(tmp.parent).free
            if free < MIN_FREE_BYTES or "write failed" in str(err) or "unexpected pos" in str(err):
                code = errno.ENOSPC if free < MIN_FREE_BYTES else errno.EIO
                raise OSError(code, os.strerror(code), os.fspath(path)) from None
            raise
