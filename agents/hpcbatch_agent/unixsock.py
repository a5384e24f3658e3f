"""Unix-socket helpers that work for state directories with long paths.

Vocabulary:
    socket path  ``<state dir>/agent.sock``. sockaddr_un holds ~107 bytes, and pytest's or a
                 site's state directories can be longer, so a long path is reached through
                 ``/proc/self/fd/<dir fd>/agent.sock`` (Linux resolves the directory fd).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_MAX_DIRECT = 100
T = TypeVar("T")


def _with_address(path: Path, use: Callable[[str], T]) -> T:
    if len(os.fsencode(path)) <= _MAX_DIRECT:
        return use(str(path))
    dir_fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return use(f"/proc/self/fd/{dir_fd}/{path.name}")
    finally:
        os.close(dir_fd)


def bind_listener(path: Path, backlog: int = 16) -> socket.socket:
    """A non-blocking listening socket at ``path`` (a stale socket file is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _with_address(path, listener.bind)
    listener.listen(backlog)
    listener.setblocking(False)
    return listener


def connect(path: Path, timeout_s: float | None = 5.0) -> socket.socket:
    """A connected blocking socket; raises OSError when nothing listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        _with_address(path, sock.connect)
    except BaseException:
        sock.close()
        raise
    return sock


def is_listening(path: Path) -> bool:
    try:
        connect(path, timeout_s=2.0).close()
    except OSError:
        return False
    return True
