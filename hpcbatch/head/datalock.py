"""One head per data directory: an exclusive lock, taken before the head does anything else.

Vocabulary: the **head lock** is ``<data_dir>/head.lock``, a file held with ``flock(LOCK_EX |
LOCK_NB)`` for the whole life of the head process. It holds the PID of the head that holds it, so
a second head refuses at once and names the first ("pid 1234"). The kernel drops the lock when the
holder exits, even on ``kill -9``, so a stale file never blocks a restart: the file is never
removed (removing it would let two heads lock two different files of one name).

The file is opened ``O_NOFOLLOW`` (a symlink planted in the data directory is refused, not
followed) and created 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from hpcbatch.errors import HpcbatchError

LOCK_NAME = "head.lock"


class DataDirInUseError(HpcbatchError):
    """Another head holds the data directory (or its lock file cannot be had)."""


class HeadLock:
    """The held lock; ``release`` (or process exit) lets the next head in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


HEAD_HINT = "stop it first, or give this one another --data-dir"


def acquire(data_dir: Path, hint: str = HEAD_HINT) -> HeadLock:
    """Create the data directory (0700) if needed and lock it for this process, or raise
    ``DataDirInUseError`` naming the PID of the head that holds it, then ``hint``: what to
    do about it (``hpcbatch restore`` takes the lock too, and says its own)."""
    path = Path(data_dir).absolute() / LOCK_NAME
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise DataDirInUseError(f"cannot open the head lock {path}: {error.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_pid(fd)
        os.close(fd)
        who = f"pid {holder}" if holder else "a process that has not written its pid yet"
        raise DataDirInUseError(
            f"another head is running on data directory {path.parent} ({who} holds {path}); " + hint
        ) from None
    except OSError as error:
        os.close(fd)
        raise DataDirInUseError(f"cannot lock {path}: {error.strerror}") from None
    if os.fstat(fd).st_mode & 0o077:  # a file an older head or a person left readable
        os.fchmod(fd, 0o600)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return HeadLock(path, fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        if text.isascii() and text.isdigit():
            return int(text)
    return None
