"""``GET /hpcbatch/v1/top`` and ``hpcbatch top`` against a real head: exact counts while an array
runs, one frame in 80 columns, ``q`` and Ctrl-C through a real terminal (a pty), and the head
going away while ``top`` watches it."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.head.headproc import HeadProcess, wait_for

# The CLI as `python -m`, so it runs this checkout's code whatever the installed script points at.
CLI = [sys.executable, "-m", "hpcbatch.cli.main"]


def cli(head: HeadProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint, **env}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=environ, timeout=60)


@pytest.fixture
def busy(head: HeadProcess) -> Iterator[tuple[HeadProcess, str, str]]:
    """A failed job, then an array of 6 one-vCPU children on 2 nodes of 2 vCPUs: 4 run and 2
    wait for room. Yields (head, the failed job's id, the array's id)."""
    failed = cli(head, "submit", "--name", "boom", "--wait", "--", "sh", "-c", "exit 3")
    assert failed.returncode == 1, failed.stderr
    failed_id = failed.stdout.strip()
    array = cli(head, "submit", "--name", "sleepy", "--array-size", "6", "--", "sleep", "300")
    assert array.returncode == 0, array.stderr
    array_id = array.stdout.strip()

    def four_running() -> dict[str, Any] | None:
        doc: dict[str, Any] = head.get("/hpcbatch/v1/top")
        return doc if doc["queues"][0]["depth"]["RUNNING"] == 4 else None

    wait_for(four_running, 30, "4 children RUNNING")
    yield head, failed_id, array_id


def test_top_route_counts_an_array_by_its_children(busy: tuple[HeadProcess, str, str]) -> None:
    head, failed_id, array_id = busy
    doc = head.get("/hpcbatch/v1/top")
    [queue] = doc["queues"]
    assert queue["name"] == "default" and queue["state"] == "ENABLED"
    # The parent (PENDING while its children run) is not work: the children are.
    assert queue["depth"] == {
        "SUBMITTED": 0,
        "PENDING": 0,
        "RUNNABLE": 2,
        "STARTING": 0,
        "RUNNING": 4,
    }
    assert [n["name"] for n in doc["nodes"]] == ["local-1", "local-2"]
    assert [n["allocatedVcpus"] for n in doc["nodes"]] == ["2", "2"]  # as nodes shows them
    assert [n["runningJobs"] for n in doc["nodes"]] == [2, 2]
    running = doc["running"]
    assert len(running) == 4
    assert {j["jobId"].rpartition(":")[0] for j in running} == {array_id}
    assert all(j["status"] == "RUNNING" and j["node"].startswith("local-") for j in running)
    assert [j["startedAt"] for j in running] == sorted(
        (j["startedAt"] for j in running), reverse=True
    )
    [failed] = doc["failed"]
    assert failed["jobId"] == failed_id and failed["jobName"] == "boom"
    assert failed["exitCode"] == 3 and failed["statusReason"]
    # ?jobs=N bounds both lists; out of range is a 400 naming it.
    assert len(head.get("/hpcbatch/v1/top", jobs=2)["running"]) == 2
    refused = httpx.get(f"{head.endpoint}/hpcbatch/v1/top", params={"jobs": "0"}, timeout=10)
    assert refused.status_code == 400 and "jobs" in refused.text


def test_top_once_prints_one_frame_in_80_columns(busy: tuple[HeadProcess, str, str]) -> None:
    head, failed_id, array_id = busy
    shown = cli(head, "top", "--once", COLUMNS="80")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    queue_row = next(line for line in lines if line.startswith("default "))
    assert queue_row.split() == ["default", "ENABLED", "0", "0", "2", "0", "4"]
    assert sum(1 for line in lines if line.startswith(array_id[:8] + ":")) == 4
    assert any(line.startswith(failed_id[:8] + " ") and " boom " in line for line in lines)
    assert sum(1 for line in lines if line.startswith("local-")) == 2


def test_top_once_with_no_head_says_so_and_exits_4(tmp_path: Path) -> None:
    environ = {**os.environ, "HPCBATCH_ENDPOINT": "http://127.0.0.1:9"}
    gone = subprocess.run(
        [*CLI, "top", "--once"], capture_output=True, text=True, env=environ, timeout=60
    )
    assert gone.returncode == 4
    assert "hpcbatch top: the head went away: cannot reach the head at" in gone.stderr
    assert "127.0.0.1:9" in gone.stderr and gone.stdout == ""


class Terminal:
    """``hpcbatch top`` in a real 80x24 pseudo-terminal, run by ``sh`` which then prints its
    exit status and ``stty -a``: the terminal's modes after top has gone."""

    def __init__(self, endpoint: str) -> None:
        script = (
            "trap : INT; "  # a Ctrl-C meant for top must not end the shell too
            f"{' '.join(CLI)} top; rc=$?; echo; echo TOP-EXIT=$rc; stty -a"
        )
        self.output = b""
        pid, self.fd = pty.fork()
        if pid == 0:  # the child: size the terminal, become the shell
            import fcntl
            import struct
            import termios

            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            env = {**os.environ, "HPCBATCH_ENDPOINT": endpoint, "TERM": "xterm-256color"}
            env.pop("COLUMNS", None)
            env.pop("LINES", None)
            os.execve("/bin/sh", ["sh", "-c", script], env)
        self.pid = pid

    def read_until(self, pattern: bytes, timeout: float = 20.0) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.output)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} in the terminal: {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: every process on the terminal has gone
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {pattern!r}: {self.output!r}")
                self.output += chunk
        return found

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def exit_status(self) -> int:
        found = self.read_until(rb"TOP-EXIT=(\d+)")
        modes = self.read_until(rb"(?s)TOP-EXIT=.*?(\S*icanon).*?(\S*echo) ").groups()
        assert modes == (b"icanon", b"echo"), f"terminal left in {modes}"  # not -icanon, -echo
        return int(found.group(1))

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the shell and top: their own group
            os.killpg(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal(head: HeadProcess) -> Iterator[Terminal]:
    term = Terminal(head.endpoint)
    try:
        yield term
    finally:
        term.close()


def test_q_quits_and_gives_the_terminal_back(terminal: Terminal) -> None:
    terminal.read_until(rb"Queues")
    terminal.read_until(rb"Failed \(newest\)")
    terminal.type(b"q")
    assert terminal.exit_status() == 0


def test_ctrl_c_quits_and_gives_the_terminal_back(terminal: Terminal) -> None:
    terminal.read_until(rb"Failed \(newest\)")
    terminal.type(b"\x03")
    assert terminal.exit_status() == 130
    assert b"Traceback" not in terminal.output


def test_sigterm_ends_top_and_gives_the_terminal_back(terminal: Terminal) -> None:
    terminal.read_until(rb"Failed \(newest\)")
    children = Path(f"/proc/{terminal.pid}/task/{terminal.pid}/children").read_text().split()
    [top_pid] = [int(pid) for pid in children]  # the shell's one child: top
    os.kill(top_pid, signal.SIGTERM)
    assert terminal.exit_status() == 128 + signal.SIGTERM
    assert b"Traceback" not in terminal.output


def test_the_head_going_away_ends_top_with_a_message(head: HeadProcess, terminal: Terminal) -> None:
    terminal.read_until(rb"Failed \(newest\)")
    head.stop()
    assert terminal.exit_status() == 4
    assert b"hpcbatch top: the head went away: cannot reach the head at" in terminal.output
    assert b"Traceback" not in terminal.output
