"""Root never follows a user's symlink: the agent makes its own state dir, refuses one that
others own or may write, creates its files 0600 and never opens one through a symlink, and
talks only to its own uid and root (issue 18, item 6)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import Client
from hpcbatch_agent import protocol as p
from hpcbatch_agent.unixsock import is_listening


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _serve_once(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``serve`` expecting it to refuse and exit; kill its whole session otherwise."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hpcbatch_agent", "serve", "--state-dir", str(state_dir), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"the agent on {state_dir} served instead of refusing")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (a state dir of another owner, a peer of another uid)")


def test_the_agent_makes_its_state_dir_and_files_private(start_agent, tmp_path: Path) -> None:
    agent = start_agent(state_dir=tmp_path / "fresh")
    state = agent.state_dir
    client = Client(state)
    client.hello()
    client.send(p.launch([p.attempt_spec("a", ["true"])]))
    client.wait_state("a", p.EXITED)
    assert _mode(state) == 0o711
    assert {name: _mode(state / name) for name in ("logs", "spool", "reaped", "work")} == {
        "logs": 0o700,
        "spool": 0o700,
        "reaped": 0o700,
        "work": 0o711,
    }
    assert _mode(state / "agent.sock") == 0o600
    for name in ("agent.pid", "agent.lock", "spool/journal.jsonl"):
        assert _mode(state / name) == 0o600, name
    client.close()


def test_a_state_dir_writable_by_others_is_refused_with_its_owner_and_mode(
    tmp_path: Path,
) -> None:
    state = tmp_path / "open"
    state.mkdir()
    state.chmod(0o777)
    done = _serve_once(state)
    assert done.returncode == 2
    assert f"refusing state directory {state.resolve()}: owner uid {os.geteuid()}" in done.stderr
    assert "mode 0777: it must not be writable by group or others" in done.stderr
    assert not (state / "agent.sock").exists()


def test_a_state_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    _needs_root()
    state = tmp_path / "theirs"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    done = _serve_once(state)
    assert done.returncode == 2
    assert f"refusing state directory {state.resolve()}: owner uid 65534" in done.stderr
    assert "mode 0700: it must be owned by the agent's uid 0 (root)" in done.stderr


def test_a_readable_state_dir_is_tightened(start_agent, tmp_path: Path) -> None:
    state = tmp_path / "loose"
    (state / "logs").mkdir(parents=True)
    state.chmod(0o755)
    (state / "logs").chmod(0o755)
    start_agent(state_dir=state)
    assert (_mode(state), _mode(state / "logs")) == (0o711, 0o700)


@pytest.mark.parametrize("name", ["spool/journal.jsonl", "agent.lock"])
def test_a_symlink_in_place_of_a_state_file_is_not_followed(tmp_path: Path, name: str) -> None:
    state = tmp_path / "planted"
    (state / "spool").mkdir(parents=True)
    target = tmp_path / "precious"
    target.write_text("precious\n")
    (state / name).symlink_to(target)
    done = _serve_once(state)
    assert done.returncode == 2
    assert f"refusing {state.resolve() / name}: it is a symbolic link" in done.stderr
    assert target.read_text() == "precious\n"
    assert _mode(target) == 0o644


def test_a_symlink_in_place_of_the_pidfile_is_replaced_not_followed(
    start_agent, tmp_path: Path
) -> None:
    state = tmp_path / "pidlink"
    state.mkdir()
    target = tmp_path / "precious"
    target.write_text("precious\n")
    (state / "agent.pid").symlink_to(target)
    (state / "agent.pid.tmp").symlink_to(target)
    agent = start_agent(state_dir=state)
    assert target.read_text() == "precious\n"
    assert not (state / "agent.pid").is_symlink()
    assert int((state / "agent.pid").read_text()) == agent.pid


def test_a_symlink_in_place_of_agent_log_is_not_followed(tmp_path: Path) -> None:
    state = tmp_path / "loglink"
    state.mkdir()
    target = tmp_path / "precious"
    target.write_text("precious\n")
    (state / "agent.log").symlink_to(target)
    done = subprocess.run(
        [sys.executable, "-m", "hpcbatch_agent", "serve", "--detach", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if is_listening(state / "agent.sock"):  # today's agent: it started, writing its log there
        subprocess.run([sys.executable, "-m", "hpcbatch_agent", "stop", "--state-dir", str(state)])
    assert done.returncode == 1
    assert f"refusing {state.resolve() / 'agent.log'}: it is a symbolic link" in done.stderr
    assert target.read_text() == "precious\n"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users may traverse (pytest's tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="hb-peer-", dir="/tmp"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


PEER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(sys.argv[1])
try:  # the agent may close before the hello is even written (EPIPE), or with it unread
    sock.sendall(b'{"v":1,"type":"hello","head":"intruder"}\\n')
    print(repr(sock.recv(4096)))
except (BrokenPipeError, ConnectionResetError):
    print(repr(b""))
"""


def test_a_peer_of_another_uid_is_refused_even_if_the_socket_mode_lets_it_in(
    start_agent, shared_dir: Path
) -> None:
    _needs_root()
    python = shutil.which("python3", path="/usr/bin:/bin")  # one another user may run
    if python is None:
        pytest.skip("no system python3 for a peer running as nobody")
    agent = start_agent(state_dir=shared_dir / "a")
    sock = agent.state_dir / "agent.sock"
    sock.chmod(0o666)  # the mode is one guard; the peer's uid is the other
    done = subprocess.run(
        [python, "-I", "-c", PEER, str(sock)],
        capture_output=True,
        text=True,
        timeout=30,
        user="nobody",
        cwd="/",
    )
    assert done.stdout.strip() == "b''", done.stderr  # closed, no hello
    client = Client(agent.state_dir)  # root is served as before
    assert client.hello()["type"] == "hello"
    client.close()
