"""Outputs that are never half-written: write to a temporary sibling, then rename over the target."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


MIN_FREE_BYTES = 1 << 20  # below this a failed write is taken for a full disk
_TEMPORARY_NAME_BYTES = 100  # of the target's name kept in its temporary's: any name that fits fits with it


def temporary_name(name: str) -> str:
    """``.<name>.tmp-<pid>-<12 hex>``: unique even across machines sharing a file system (two ranks may have the
    same process id); a long ``name`` is cut to its first bytes, so that a target name the file system accepts
    never fails for its temporary's length."""
    raw = os.fsencode(name)
    shown = os.fsdecode(raw[:_TEMPORARY_NAME_BYTES]) if len(raw) > _TEMPORARY_NAME_BYTES else name
    return f".{shown}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"


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
