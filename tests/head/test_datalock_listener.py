"""The head's lock on its data directory and its listening socket, taken before anything else:
who holds the lock, a planted symlink, a lock freed by kill -9; addresses malformed, in use,
stale and live unix sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hpcbatch.head import datalock
from hpcbatch.head.listener import ListenError, bind_listener

IN_USE = (
    "the address is already in use (another head, or another program, listens there); "
    "stop it or choose another --listen"
)


def test_the_lock_holds_the_pid_0600_and_a_second_taker_is_told_who(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lock = datalock.acquire(data)
    path = data / "head.lock"
    assert path.read_text() == f"{os.getpid()}\n"
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(datalock.DataDirInUseError) as refused:
        datalock.acquire(data)
    assert refused.value.message == (
        f"another head is running on data directory {data} (pid {os.getpid()} holds {path}); "
        "stop it first, or give this one another --data-dir"
    )
    lock.release()
    datalock.acquire(data).release()  # released: the next head gets it


def test_a_symlink_planted_as_the_lock_is_refused_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    (tmp_path / "head.lock").symlink_to(target)
    with pytest.raises(datalock.DataDirInUseError) as refused:
        datalock.acquire(tmp_path)
    assert refused.value.message == (
        f"cannot open the head lock {tmp_path / 'head.lock'}: Too many levels of symbolic links"
    )
    assert target.read_text() == "keep\n"


def test_a_readable_lock_file_is_made_0600(tmp_path: Path) -> None:
    path = tmp_path / "head.lock"
    path.write_text("")
    path.chmod(0o644)
    datalock.acquire(tmp_path).release()
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_head_killed_with_9_leaves_the_lock_free(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from hpcbatch.head import datalock; datalock.acquire(sys.argv[1]);"
            " print('held', flush=True); sys.stdin.read()",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(datalock.DataDirInUseError, match=f"pid {holder.pid} holds"):
            datalock.acquire(tmp_path)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    datalock.acquire(tmp_path).release()


@pytest.mark.parametrize("listen", ["7650", "head:http", "head:99999", "head:", "h:²"])
def test_a_malformed_address_is_named(listen: str) -> None:
    with pytest.raises(ListenError) as refused:
        bind_listener(listen)
    assert refused.value.message == (
        f"listen address must be HOST:PORT (a port 0-65535) or unix:/PATH, not {listen!r}"
    )


def test_a_tcp_port_in_use_is_refused_and_port_0_says_which_it_got() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as refused:
            bind_listener(f"127.0.0.1:{port}")
    assert refused.value.message == f"cannot listen on 127.0.0.1:{port}: {IN_USE}"
    listener = bind_listener("127.0.0.1:0")
    try:
        port = listener.sock.getsockname()[1]
        assert port > 0 and listener.url == f"http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it listens already, before any server runs
    finally:
        listener.close()


def test_a_live_unix_socket_is_refused_a_stale_one_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "head.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen()
    with pytest.raises(ListenError) as refused:
        bind_listener(f"unix:{path}")
    assert refused.value.message == f"cannot listen on unix:{path}: {IN_USE}"
    live.close()  # the file stays: what a killed head leaves
    assert path.exists()
    listener = bind_listener(f"unix:{path}")
    assert listener.url == f"unix://{path}"
    assert path.stat().st_mode & 0o777 == 0o666
    listener.close()
    assert not path.exists()


def test_a_unix_path_that_is_no_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "head.sock"
    path.write_text("data\n")
    with pytest.raises(ListenError) as refused:
        bind_listener(f"unix:{path}")
    assert (
        refused.value.message == f"cannot listen on unix:{path}: {path} exists and is not a socket"
    )
    assert path.read_text() == "data\n"


def test_close_leaves_a_socket_another_head_made_at_the_same_path(tmp_path: Path) -> None:
    path = tmp_path / "head.sock"
    listener = bind_listener(f"unix:{path}")
    path.unlink()
    newer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    newer.bind(str(path))
    try:
        listener.close()
        assert path.exists()
    finally:
        newer.close()
