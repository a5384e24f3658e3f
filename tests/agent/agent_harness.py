"""Helpers for agent tests: real agent processes, a blocking head client, polling.

A module with a unique name (not conftest) so test modules can import it unambiguously.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hpcbatch_agent import protocol as p
from hpcbatch_agent.cgroups import TOP, Cgroups, parse_proc_cgroup
from hpcbatch_agent.jobs import find_jobs
from hpcbatch_agent.unixsock import connect, is_listening

DEADLINE_S = 15.0


def poll_until(condition: Callable[[], Any], timeout_s: float = DEADLINE_S, what: str = "") -> Any:
    """Return condition()'s first truthy value; fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what or condition}")
        time.sleep(0.01)


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] == "Z"


class AgentProcess:
    """One ``python -m hpcbatch_agent serve`` child of the test: the keeper, which runs the
    agent itself in a child (``pid``, from agent.pid)."""

    def __init__(self, state_dir: Path, args: list[str], env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "hpcbatch_agent", "serve", "--state-dir", str(state_dir), *args],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        poll_until(
            lambda: is_listening(state_dir / "agent.sock") or self.popen.poll() is not None,
            what="agent socket",
        )
        if self.popen.poll() is not None:
            stderr = self.popen.stderr.read().decode() if self.popen.stderr else ""
            pytest.fail(f"agent exited with {self.popen.returncode}: {stderr}")
        self.pid = int((state_dir / "agent.pid").read_text())

    @property
    def keeper_pid(self) -> int:
        return self.popen.pid

    def kill9(self) -> None:
        """SIGKILL the agent (not its keeper, which inherits the jobs)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        poll_until(lambda: process_gone(self.pid), what="the agent to die")

    def stop(self) -> None:
        """SIGTERM the agent and wait for it; the keeper stays while jobs are left."""
        if not process_gone(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            poll_until(lambda: process_gone(self.pid), what="the agent to stop")

    def wait_keeper(self) -> None:
        """The keeper leaves once its last child (agent or job) is gone."""
        try:
            self.popen.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"keeper {self.popen.pid} stayed after its agent and jobs were gone")
        finally:
            if self.popen.stderr:
                self.popen.stderr.close()


def kill_leftover_jobs(state_dir: Path) -> None:
    for pid in find_jobs(str(state_dir.resolve())).values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


class Client:
    """A blocking head-side client that remembers the latest update of every attempt."""

    def __init__(self, state_dir: Path) -> None:
        self.sock: socket.socket = connect(state_dir / "agent.sock", timeout_s=DEADLINE_S)
        self.buffer = b""
        self.latest: dict[str, dict[str, Any]] = {}
        self.seen: list[dict[str, Any]] = []  # every update, in order
        self.others: list[dict[str, Any]] = []  # non-update messages not yet consumed

    def send(self, message: dict[str, Any]) -> None:
        self.sock.sendall(p.encode(message))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout_s: float = DEADLINE_S) -> dict[str, Any] | None:
        """The next message, or None on EOF."""
        self.sock.settimeout(timeout_s)
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        if message.get("type") == "updates":
            for update in message["updates"]:
                self.latest[update["attempt_id"]] = update
                self.seen.append(update)
        return message

    def hello(self, head: str = "test-head") -> dict[str, Any]:
        self.send(p.head_hello(head))
        return self.wait_message("hello")

    def wait_message(self, kind: str, timeout_s: float = DEADLINE_S) -> dict[str, Any]:
        for index, message in enumerate(self.others):
            if message["type"] == kind:
                return self.others.pop(index)
        deadline = time.monotonic() + timeout_s
        while True:
            message = self.recv(max(0.01, deadline - time.monotonic()))
            assert message is not None, f"connection closed while waiting for {kind}"
            if message["type"] == kind:
                return message
            if message["type"] not in ("updates", "heartbeat"):
                self.others.append(message)

    def wait_state(self, attempt_id: str, *states: str, timeout_s: float = DEADLINE_S) -> dict:
        deadline = time.monotonic() + timeout_s
        while self.latest.get(attempt_id, {}).get("state") not in states:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{attempt_id} never reached {states}: {self.latest.get(attempt_id)}")
            try:
                message = self.recv(remaining)
            except TimeoutError:
                continue
            assert message is not None, "connection closed"
            if message["type"] not in ("updates", "heartbeat"):
                self.others.append(message)
        return self.latest[attempt_id]

    def close(self) -> None:
        self.sock.close()


def cgroups_of(host: Cgroups, pid: int) -> dict[str, str]:
    """{controller or "kill": dir} of the slot a live job is in, once it has joined (on v2
    the job's shim joins just after RUNNING is reported)."""

    def joined() -> dict[str, str] | None:
        found = parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
        keys = ["" if h.version == 2 else h.controllers[0] for h in host.plan]
        return found if all(f"/{TOP}/" in found[key] for key in keys) else None

    paths = poll_until(joined, what="the job to join its cgroups")
    found: dict[str, str] = {}
    for hierarchy in host.plan:
        path = paths["" if hierarchy.version == 2 else hierarchy.controllers[0]]
        for name in hierarchy.controllers or ("kill",):
            found[name] = hierarchy.path + path
    return found


def attempt_spec(attempt_id: str, *command: str, **fields: Any) -> dict[str, Any]:
    """A launch's attempt: 1 vCPU, no memory limit, GPU, timeout or cwd, ``command`` (default
    ``true``), ``fields`` replacing any of that."""
    base = {
        "attempt_id": attempt_id,
        "command": list(command) or ["true"],
        "env": {},
        "cwd": None,
        "timeout_s": None,
        "gpus": [],
        "vcpus": 1,
        "memory_mib": 0,
    }
    return {**base, **fields}


def array_child(
    parent: str, index: int, *command: str, number: int = 1, **fields: Any
) -> dict[str, Any]:
    """Child ``index`` of array ``parent`` as the head launches it: its id and the two
    variables that name it, plus ``fields["env"]``."""
    env = {"AWS_BATCH_JOB_ID": f"{parent}:{index}", "AWS_BATCH_JOB_ARRAY_INDEX": str(index)}
    env.update(fields.pop("env", {}))
    return attempt_spec(f"{parent}:{index}/{number}", *command, env=env, **fields)


def gang_node(
    parent: str, index: int, nodes: int, *command: str, main: int = 0, **fields: Any
) -> dict[str, Any]:
    """Node ``index`` of ``parent``'s ``nodes``-node job as the head launches it on a SLURM
    compute environment (no addresses: Slurm's to give), plus ``fields["env"]``."""
    env = {
        "AWS_BATCH_JOB_ID": f"{parent}#{index}",
        "AWS_BATCH_JOB_NODE_INDEX": str(index),
        "AWS_BATCH_JOB_NUM_NODES": str(nodes),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(main),
    }
    env.update(fields.pop("env", {}))
    return attempt_spec(f"{parent}#{index}/1", *command, env=env, **fields)
