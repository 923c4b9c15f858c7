"""How a failure of the machine reads in one line, for every layer: each layer raises its own exceptions (plain
``ValueError`` / ``OSError`` / its module's error class) and the shells (``cli``, ``app``) word them; this is the
one wording they share for an ``OSError``."""
from __future__ import annotations

import errno


def describe_os_error(err: OSError) -> str:
    """``<file>: <reason>`` without Python's ``[Errno N]`` decoration; a full disk says so plainly."""
    where = err.filename if err.filename is not None else ""
    if err.errno == errno.ENOSPC:
        reason = "no space left on the device (free some, then rerun: finished outputs are kept)"
    elif err.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif err.errno == errno.EROFS:
        reason = "read-only file system"
    else:
        reason = err.strerror or str(err).splitlines()[0]
    return f"{where}: {reason}" if where else reason
