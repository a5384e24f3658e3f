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
import struct
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
    """A non-blocking listening socket at ``path``, mode 0600 from its creation on (a stale
    socket file is replaced). The umask is the process's: callers are single-threaded."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)
    try:
        _with_address(path, listener.bind)
    except BaseException:
        listener.close()
        raise
    finally:
        os.umask(umask)
    listener.listen(backlog)
    listener.setblocking(False)
    return listener


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED: as it was at connect)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("iII"))
    _pid, uid, _gid = struct.unpack("iII", creds)
    return int(uid)


def peer_refusal(sock: socket.socket) -> str | None:
    """Why a connection may not talk to this agent, or None: only the agent's own uid and
    root may (the socket's mode says the same; this holds even if the mode were lost)."""
    try:
        uid = peer_uid(sock)
    except OSError as exc:
        return f"cannot read the peer's credentials: {exc}"
    if uid in (0, os.geteuid()):
        return None
    return f"peer uid {uid} is neither the agent's ({os.geteuid()}) nor root"


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
