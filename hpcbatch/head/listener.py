"""The head's listening socket, bound before the head opens its state or touches any host.

Vocabulary: the **listen address** is ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) or
``unix:/path``. ``bind_listener`` binds and listens on it at once and hands the socket to the
HTTP server later, so an address already in use stops the head before it has connected to a
single agent: a second head must never replace the first head's agents and only then find
that it cannot serve.

A unix socket path that exists is taken over only when nothing answers on it (the file a
killed head left); a live one is refused like a TCP port in use. The new socket is made
0666, as uvicorn made it, and removed on ``close`` if it is still this head's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from hpcbatch.errors import HpcbatchError

BACKLOG = 2048  # uvicorn's default


class ListenError(HpcbatchError):
    """The listen address is malformed, in use, or cannot be bound."""


@dataclass
class Listener:
    sock: socket.socket
    url: str  # what a client gives as its endpoint
    unix_path: Path | None = None
    unix_inode: int | None = None  # the socket file this head made (not one made after it)

    def close(self) -> None:
        self.sock.close()
        if self.unix_path is not None:
            with contextlib.suppress(OSError):
                if self.unix_path.lstat().st_ino == self.unix_inode:
                    self.unix_path.unlink()


def bind_listener(listen: str, setting: str = "--listen") -> Listener:
    """``setting``: what a person changes to choose another address (named when it is in use)."""
    if listen.startswith("unix:"):
        return _bind_unix(Path(listen[len("unix:") :]))
    host, port = parse_host_port(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise ListenError(f"cannot listen on {listen}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not a port in use: TIME_WAIT
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise ListenError(_bind_failure(listen, error, setting)) from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return Listener(sock, f"http://{shown}:{bound_port}")


def parse_host_port(listen: str) -> tuple[str, int]:
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ListenError(
            f"listen address must be HOST:PORT (a port 0-65535) or unix:/PATH, not {listen!r}"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "127.0.0.1", int(port)


def _bind_failure(listen: str, error: OSError, setting: str = "--listen") -> str:
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {listen}: the address is already in use (another head, or "
            f"another program, listens there); stop it or choose another {setting}"
        )
    return f"cannot listen on {listen}: {error.strerror or error}"


def _bind_unix(path: Path) -> Listener:
    listen = f"unix:{path}"
    _take_over_stale(path, listen)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        inode = path.lstat().st_ino
        os.chmod(path, 0o666)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise ListenError(_bind_failure(listen, error)) from None
    return Listener(sock, f"unix://{path}", unix_path=path, unix_inode=inode)


def _take_over_stale(path: Path, listen: str) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise ListenError(f"cannot listen on {listen}: {error.strerror}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise ListenError(f"cannot listen on {listen}: {path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # nobody listens: a socket file a stopped head left
        return
    except OSError as error:  # e.g. a full backlog: someone is there
        raise ListenError(f"cannot listen on {listen}: {error.strerror or error}") from None
    finally:
        probe.close()
    raise ListenError(_bind_failure(listen, OSError(errno.EADDRINUSE, "in use")))
