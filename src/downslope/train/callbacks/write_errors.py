"""What a failed write means to the user: the true cause (a full disk is not an unwritable path) and the
advice that fits it, naming the file asked for rather than a temporary one beside it."""

from __future__ import annotations

import errno
import os

#: errnos that mean the device is full (or the user's quota or the file size limit is reached): the path is
#: fine, the space is not
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_failure(exc: OSError, path: str | os.PathLike[str]) -> str:
    """Why writing ``path`` failed with ``exc`` and what to do about it, in one clause.

    Example:
        >>> write_failure(OSError(errno.ENOSPC, "No space left on device"), "runs/m.ckpt")
        'cannot write runs/m.ckpt (No space left on device): the device holding it is full; make room there'
        >>> write_failure(PermissionError(errno.EACCES, "Permission denied"), "ro/log.csv")
        'cannot write ro/log.csv (Permission denied); choose a writable path'
    """
    return f"cannot write {os.fspath(path)} ({exc.strerror or exc}){failure_cause(exc)}; {failure_advice(exc)}"


def failure_cause(exc: OSError) -> str:
    """': the device holding it is full' and the like: what the errno means for the file (empty when the
    system's own words say it)."""
    if exc.errno == errno.ENOSPC:
        return ": the device holding it is full"
    if exc.errno == errno.EDQUOT:
        return ": the disk quota on the device holding it is used up"
    if exc.errno == errno.EFBIG:
        return ": it would exceed the file-size limit (ulimit -f)"
    if exc.errno == errno.EROFS:
        return ": the file system holding it is read-only"
    return ""


def failure_advice(exc: OSError) -> str:
    """What to do: make room, raise the limit, or write elsewhere."""
    if exc.errno == errno.EFBIG:
        return "raise the file-size limit (ulimit -f)"
    if exc.errno in NO_SPACE:
        return "make room there"
    return "choose a writable path"


def check_writable(path: str | os.PathLike[str], who: str) -> None:
    """Refuse, before any training, a ``path`` whose directory cannot hold a new file (read-only, no
    permission, missing and not creatable): by writing a probe file there and removing it, which tells the
    truth where permission bits do not (a read-only mount, an ACL). Raises an OSError of the same kind
    (PermissionError, ...) saying ``who`` wanted to write which path and why."""
    import tempfile
    from pathlib import Path

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise type(exc)(exc.errno, f"{who}: {write_failure(exc, target)}") from None
