"""No input crashes an agent: a bad attempt fails alone, a bad request gets an error, and the
agent keeps serving the head and every other attempt (issue 18, item 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agent_harness import AgentProcess, Client
from hpcbatch_agent import protocol as p


def _spec(attempt_id: str, **overrides: Any) -> dict[str, Any]:
    return {**p.attempt_spec(attempt_id, ["true"]), **overrides}


BAD_ATTEMPTS = [
    pytest.param({"user": "no\0body"}, "'user' must not contain a NUL byte", id="nul-user"),
    pytest.param({"user": ""}, "'user' must not be empty", id="empty-user"),
    pytest.param({"command": ["echo", "a\0b"]}, "'command' must not contain a NUL", id="nul-arg"),
    pytest.param({"env": {"P": "x\0y"}}, "'env' value of 'P' must not contain a NUL", id="nul-env"),
    pytest.param({"env": {"A\0B": "x"}}, "'env' names must be non-empty", id="nul-env-name"),
    pytest.param({"env": {"A=B": "x"}}, "'env' names must be non-empty", id="eq-env-name"),
    pytest.param({"cwd": "/tmp\0/x"}, "'cwd' must not contain a NUL byte", id="nul-cwd"),
    pytest.param({"timeout_s": 2**70}, "'timeout_s' must be from 0 to", id="huge-timeout"),
    pytest.param({"memory_mib": -1}, "'memory_mib' must be from 0 to", id="negative-memory"),
]


@pytest.mark.parametrize(("override", "rule"), BAD_ATTEMPTS)
def test_a_bad_attempt_fails_alone_and_the_agent_serves_on(
    client: Client, agent: AgentProcess, override: dict[str, Any], rule: str
) -> None:
    client.send(p.launch([_spec("bad", **override), _spec("good")]))
    failed = client.wait_state("bad", p.FAILED_TO_START)
    assert failed["reason"].startswith("CannotStartContainerError: malformed message: ")
    assert rule in failed["reason"]
    assert "launch.attempts[0]" in failed["reason"]
    assert client.wait_state("good", p.EXITED)["exit_code"] == 0
    client.send(p.launch([_spec("after")]))  # the same agent, still serving
    assert client.wait_state("after", p.EXITED)["exit_code"] == 0
    assert not _gone(agent.pid)
    client.send(p.launch([_spec("bad", **override)]))  # relaunched: told again, never run
    assert client.wait_message("error")["reason"].startswith("malformed message:")
    assert client.wait_state("bad", p.FAILED_TO_START)["reason"] == failed["reason"]


def test_an_attempt_without_a_usable_id_is_answered_with_an_error(client: Client) -> None:
    client.send(p.launch([_spec("x\0y"), {"command": ["true"]}, _spec("good")]))
    first = client.wait_message("error")["reason"]
    second = client.wait_message("error")["reason"]
    assert "launch.attempts[0]: 'attempt_id' must not contain a NUL byte" in first
    assert "launch.attempts[1] lacks field 'attempt_id'" in second
    assert client.wait_state("good", p.EXITED)["exit_code"] == 0


@pytest.mark.parametrize(
    ("offset", "max_bytes", "rule"),
    [
        (2**63, 100, "'offset' must be from 0 to 4611686018427387904, not 9223372036854775808"),
        (-1, 100, "'offset' must be from 0 to"),
        (0, -5, "'max_bytes' must be from 0 to"),
        (0, 2**64, "'max_bytes' must be from 0 to"),
    ],
)
def test_a_read_log_out_of_bounds_gets_an_error_and_the_agent_serves_on(
    client: Client, agent: AgentProcess, offset: int, max_bytes: int, rule: str
) -> None:
    client.send(p.launch([_spec("logged", command=["echo", "hi"])]))
    client.wait_state("logged", p.EXITED)
    client.send(p.read_log(7, "logged", offset, max_bytes))
    reply = client.wait_message("log_data")
    assert (reply["req"], reply["data"]) == (7, "")
    assert rule in reply["error"]
    client.send(p.read_log(8, "logged"))
    assert client.wait_message("log_data")["data"] == "hi\n"
    assert not _gone(agent.pid)


def test_the_keeper_prints_what_killed_the_agent(tmp_path: Path) -> None:
    # The agent runs in the keeper's forked child, which leaves with os._exit: a traceback
    # used to vanish there.
    script = (
        "import sys; from pathlib import Path; from hpcbatch_agent import keeper\n"
        "def agent():\n    raise RuntimeError('the agent broke')\n"
        "sys.exit(keeper.run(Path(sys.argv[1]), agent))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "RuntimeError: the agent broke" in done.stderr


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] == "Z" or not os.path.exists(f"/proc/{pid}")


def _server(tmp_path: Path) -> Any:
    from hpcbatch_agent.server import AgentServer

    node: p.NodeInfo = {
        "name": "n1",
        "vcpus": 1,
        "memory_mib": 64,
        "gpus": [],
        "cgroups": "none",
        "hostname": "h",
    }
    return AgentServer(tmp_path / "state", node)


def test_an_exception_in_one_message_is_logged_answered_and_survived(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from hpcbatch_agent.server import Connection

    server = _server(tmp_path)
    ours, theirs = socket.socketpair()
    conn = Connection(ours)

    def broken(*args: Any) -> None:
        raise RuntimeError("a bug in the runner")

    monkeypatch.setattr(server.runner, "kill", broken)
    monkeypatch.setattr(server.runner, "launch_batch", broken)
    server._handle_line(conn, p.encode(p.kill("a", "r")))
    server._handle_line(conn, p.encode(p.launch([_spec("doomed")])))
    replies = [p.decode(line) for line in bytes(conn.outbuf).splitlines()]
    assert [r["reason"] for r in replies] == [
        "agent error handling 'kill': RuntimeError: a bug in the runner",
        "agent error handling 'launch': RuntimeError: a bug in the runner",
    ]
    failed = server.runner.current_update("doomed")
    assert failed["state"] == p.FAILED_TO_START  # never relaunched into the same bug
    assert failed["reason"] == (
        "CannotStartContainerError: agent error: RuntimeError: a bug in the runner"
    )
    logged = capsys.readouterr().err
    assert "handling a 'kill' message failed" in logged
    assert "Traceback (most recent call last)" in logged
    server.spool.close()
    ours.close()
    theirs.close()


def test_the_longest_allowed_timeout_does_not_overflow_the_agents_wait(
    agent: AgentProcess,
) -> None:
    first = Client(agent.state_dir)
    first.hello()
    first.send(p.launch([_spec("long", command=["sleep", "300"], timeout_s=p.MAX_TIMEOUT_S)]))
    first.wait_state("long", p.RUNNING)
    first.close()  # no head: the timeout is the agent's only deadline
    second = Client(agent.state_dir)
    attempts = {a["attempt_id"]: a for a in second.hello()["attempts"]}
    assert attempts["long"]["state"] == p.RUNNING
    second.send(p.kill("long", "done"))
    assert second.wait_state("long", p.EXITED)["reason"] == "done"
    second.close()
