"""The kernel names the caller: SO_PEERCRED on a Unix socket, the socket table on loopback."""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from hpcbatch.head.auth.peer import _diag_uid, _table_uid, peer_of

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another uid needs root")


def _connect_as(uid: int, family: int, address: object) -> socket.socket:
    """A client socket made by a child that became ``uid`` first; the child hands it back."""
    parent, child = socket.socketpair(socket.AF_UNIX)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setuid(uid)
            client = socket.socket(family, socket.SOCK_STREAM)
            client.connect(address)  # type: ignore[arg-type]
            socket.send_fds(child, [b"x"], [client.fileno()])
        finally:
            os._exit(0)
    child.close()  # the child's end is the child's alone: its exit is our EOF
    _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    os.waitpid(pid, 0)
    parent.close()
    assert fds, f"a process of uid {uid} could not connect to {address}"
    return socket.socket(fileno=fds[0])


@needs_root
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_loopback_caller_is_the_uid_that_made_its_socket(host: str) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as server:
        server.bind((host, 0))
        server.listen()
        client = _connect_as(nobody, family, server.getsockname()[:2])
        accepted, _ = server.accept()
        try:
            peer = peer_of(accepted)
            assert (peer.uid, peer.local) == (nobody, True)
            # both ways of asking the kernel agree: netlink's one socket, and the whole table
            ends = [
                (ipaddress.ip_address(e[0]), e[1])
                for e in (client.getsockname(), server.getsockname())
            ]
            assert _diag_uid(*ends) == _table_uid(*ends) == nobody  # type: ignore[arg-type]
        finally:
            accepted.close()
            client.close()


@needs_root
def test_a_unix_socket_caller_is_its_peercred() -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    directory = Path(tempfile.mkdtemp(prefix="hpcbatch-peer-"))  # pytest's tmp is 0700
    path = directory / "s"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        directory.chmod(0o755)
        path.chmod(0o666)
        server.listen()
        client = _connect_as(nobody, socket.AF_UNIX, str(path))
        accepted, _ = server.accept()
        try:
            assert peer_of(accepted).uid == nobody
        finally:
            accepted.close()
            client.close()
            shutil.rmtree(directory)


def test_a_remote_caller_has_no_uid() -> None:
    """A peer on a non-loopback address: the kernel cannot vouch for it."""

    class Remote:
        family = socket.AF_INET

        def getpeername(self) -> tuple[str, int]:
            return ("10.0.0.7", 40000)

        def getsockname(self) -> tuple[str, int]:
            return ("10.0.0.1", 7650)

    peer = peer_of(Remote())
    assert (peer.uid, peer.local, peer.address) == (None, False, "10.0.0.7:40000")
