"""The connection: protocol errors, heartbeats, replacing heads, and the attach relay."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from agent_harness import (
    DEADLINE_S,
    AgentProcess,
    Client,
    kill_leftover_jobs,
    poll_until,
    process_gone,
)
from hpcbatch_agent import protocol as p


def test_wrong_version_gets_an_error_and_the_connection_closes(agent: AgentProcess) -> None:
    client = Client(agent.state_dir)
    client.send({"v": 2, "type": "hello", "head": "h"})
    assert client.recv() == {
        "v": 1,
        "type": "error",
        "reason": "protocol version 2 not supported; agent speaks 1",
    }
    assert client.recv() is None
    client.close()


def test_malformed_lines_get_errors_and_serving_goes_on(agent: AgentProcess) -> None:
    client = Client(agent.state_dir)
    client.send_raw(b"this is not json\n")
    assert client.wait_message("error")["reason"].startswith("malformed message: not valid JSON")
    client.send({"v": 1, "type": "kill", "attempt_id": "a"})
    assert client.wait_message("error")["reason"] == "malformed message: kill lacks field 'reason'"
    client.send({"v": 1, "type": "launch", "attempts": [{"attempt_id": "x", "command": "true"}]})
    assert "launch.attempts[0]" in client.wait_message("error")["reason"]
    assert client.hello()["type"] == "hello"
    client.close()


def test_heartbeats(start_agent) -> None:
    agent = start_agent("--heartbeat-s", "0.1")
    client = Client(agent.state_dir)
    client.hello()
    beats = [client.wait_message("heartbeat", timeout_s=5) for _ in range(3)]
    assert beats[0]["time_ms"] < beats[2]["time_ms"]
    assert beats[0]["running"] == 0
    client.close()


def test_a_new_hello_replaces_the_head_but_a_probe_does_not(
    client: Client, agent: AgentProcess
) -> None:
    Client(agent.state_dir).close()  # a probe: connects and leaves without hello
    client.send(p.launch([p.attempt_spec("still-mine", ["true"])]))
    client.wait_state("still-mine", p.EXITED)
    second = Client(agent.state_dir)
    assert [u["attempt_id"] for u in second.hello()["attempts"]] == ["still-mine"]
    assert client.recv() is None  # the old head was closed
    second.close()


def _read_line(stream) -> dict:
    line = stream.readline()
    assert line, "attach closed its stdout"
    return json.loads(line)


def test_attach_starts_the_daemon_and_relays(tmp_path: Path) -> None:
    state_dir = tmp_path / "attached"
    attach = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpcbatch_agent",
            "attach",
            "--state-dir",
            str(state_dir),
            "--node-name",
            "via-attach",
            "--vcpus",
            "2",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    daemon_pid = None
    try:
        assert attach.stdin is not None and attach.stdout is not None
        attach.stdin.write(p.encode(p.head_hello("ssh-head")))
        attach.stdin.flush()
        hello = _read_line(attach.stdout)
        assert (hello["type"], hello["node"]["name"], hello["node"]["vcpus"]) == (
            "hello",
            "via-attach",
            2,
        )
        daemon_pid = int((state_dir / "agent.pid").read_text())
        assert daemon_pid != attach.pid
        attach.stdin.write(p.encode(p.launch([p.attempt_spec("r", ["sh", "-c", "exit 5"])])))
        attach.stdin.flush()
        final = None
        while final is None:
            message = _read_line(attach.stdout)
            final = next((u for u in message.get("updates", []) if p.is_final(u)), None)
        assert final["exit_code"] == 5
        attach.stdin.close()  # EOF: attach half-closes, the agent closes, attach exits
        assert attach.wait(timeout=DEADLINE_S) == 0
        assert not process_gone(daemon_pid)  # the daemon outlives its attach
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
        if daemon_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon_pid, signal.SIGTERM)
            poll_until(lambda: process_gone(daemon_pid), what="daemon exit")
        kill_leftover_jobs(state_dir)
