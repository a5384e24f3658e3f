"""One head per data directory, and an address in use stops a head before it touches anything:
real head processes, a real LOCAL agent, and an SSH host that is only a listening socket (so a
head that tried to reach it would leave a connection in its accept queue)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpcbatch.transport.local import read_pid
from tests.head.headproc import HeadProcess, free_port, stop_agent_and_jobs

SECOND_HEAD_TIMEOUT_S = 60


@pytest.fixture
def ssh_host(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A TCP listener posing as an SSH host, and the config section that names it."""
    listener = socket.create_server(("127.0.0.1", 0))
    key = tmp_path / "id_test"
    key.write_text("not a key: the head must never get as far as reading it\n")
    key.chmod(0o600)
    known = tmp_path / "known_hosts"
    known.write_text("")
    section = f"""
[[compute_environments]]
name = "cluster"
kind = "SSH"
[[compute_environments.hosts]]
name = "node1"
address = "127.0.0.1"
port = {listener.getsockname()[1]}
user = "nobody"
key = "{key}"
known_hosts = "{known}"
"""
    try:
        yield listener, section
    finally:
        listener.close()


def contacted(listener: socket.socket) -> bool:
    """Whether anyone connected: a completed connection waits in the accept queue."""
    listener.setblocking(False)
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def run_head(data_dir: Path, listen: str, config: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hpcbatch.cli.main", "head", "--data-dir", str(data_dir)]
    cmd += ["--listen", listen, "--config", str(config)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=SECOND_HEAD_TIMEOUT_S, check=False
    )


def stop_agents(data_dir: Path) -> None:
    """Stop what a head that got too far would have left (none does now)."""
    with contextlib.suppress(FileNotFoundError):
        for state_dir in (data_dir / "agents").iterdir():
            stop_agent_and_jobs(state_dir)


def agent_pid(head: HeadProcess) -> int:
    pid = read_pid(head.data_dir / "agents" / "local-1")
    assert pid is not None
    return pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def first(tmp_path: Path) -> Iterator[HeadProcess]:
    head = HeadProcess(tmp_path / "first")
    try:
        yield head.start()
    finally:
        head.cleanup()


def test_a_second_head_on_the_same_data_dir_refuses_naming_the_first(
    first: HeadProcess, tmp_path: Path, ssh_host: tuple[socket.socket, str]
) -> None:
    listener, section = ssh_host
    before = agent_pid(first)
    config = tmp_path / "second.toml"
    config.write_text(first.config.read_text() + section)
    assert first.proc is not None
    done = run_head(first.data_dir, f"127.0.0.1:{free_port()}", config)
    lock = first.data_dir / "head.lock"
    assert agent_pid(first) == before and alive(before)  # its agent was not replaced
    assert not contacted(listener)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == (
        f"error: another head is running on data directory {first.data_dir} "
        f"(pid {first.proc.pid} holds {lock}); stop it first, or give this one another "
        "--data-dir\n"
    )
    assert lock.read_text() == f"{first.proc.pid}\n"
    assert (lock.stat().st_mode & 0o777) == 0o600
    assert first.get("/hpcbatch/v1/health")["status"] == "ok"


def test_a_port_in_use_by_a_head_stops_the_next_before_it_touches_anything(
    first: HeadProcess, tmp_path: Path, ssh_host: tuple[socket.socket, str]
) -> None:
    listener, section = ssh_host
    before = agent_pid(first)
    data = tmp_path / "second"
    config = tmp_path / "second.toml"
    config.write_text(first.config.read_text() + section)
    done = run_head(data, f"127.0.0.1:{first.port}", config)
    stop_agents(data)
    assert agent_pid(first) == before and alive(before)
    assert not contacted(listener)
    assert (done.returncode, done.stdout) == (4, "")
    assert done.stderr == (
        f"error: cannot listen on 127.0.0.1:{first.port}: the address is already in use "
        "(another head, or another program, listens there); stop it or choose another "
        "--listen\n"
    )
    assert sorted(p.name for p in data.iterdir()) == ["head.lock"]  # no state, no agents
    assert first.get("/hpcbatch/v1/health")["status"] == "ok"


def test_a_port_in_use_by_another_program_stops_the_head_before_state_or_hosts(
    tmp_path: Path, ssh_host: tuple[socket.socket, str]
) -> None:
    listener, section = ssh_host
    data = tmp_path / "data"
    config = tmp_path / "head.toml"
    config.write_text("[local]\nnodes = 1\n" + section)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_head(data, f"127.0.0.1:{port}", config)
    try:
        assert not contacted(listener)
        assert not (data / "state.db").exists()
        assert (done.returncode, done.stdout) == (4, "")
        assert done.stderr == (
            f"error: cannot listen on 127.0.0.1:{port}: the address is already in use "
            "(another head, or another program, listens there); stop it or choose another "
            "--listen\n"
        )
        assert sorted(p.name for p in data.iterdir()) == ["head.lock"]
        assert not contacted(listener)
    finally:
        stop_agents(data)
