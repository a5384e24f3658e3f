"""The head's local transport against real agent processes (and deliberately bad ones)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hpcbatch_agent.jobs import find_jobs
from hpcbatch_agent.unixsock import is_listening

from hpcbatch import protocol
from hpcbatch.errors import ProtocolError, TransportError
from hpcbatch.transport.local import (
    connect_local_agent,
    read_pid,
    stop_local_agent,
)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] == "Z"


@pytest.fixture
def state_dir(tmp_path: Path):
    directory = tmp_path / "node-a"
    yield directory
    pid = read_pid(directory)
    stop_local_agent(directory, kill_jobs=True, timeout_s=10)
    if pid is not None:
        assert _gone(pid)
    for job in find_jobs(str(directory.resolve())).values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job, signal.SIGKILL)


async def _until_final(link, attempt_id: str) -> dict:
    async with asyncio.timeout(15):
        while True:
            message = await link.receive()
            assert message is not None
            for update in message.get("updates", []):
                if update["attempt_id"] == attempt_id and protocol.is_final(update):
                    return update


def test_connect_launch_receive_reconnect_stop(state_dir: Path) -> None:
    async def scenario() -> tuple[int, int]:
        link = await connect_local_agent(
            state_dir, "node-a", vcpus=2, memory_mib=2048, gpus=[0], head_id="head-1"
        )
        assert link.hello["node"]["name"] == "node-a"
        assert (link.hello["node"]["vcpus"], link.hello["node"]["gpus"][0]["index"]) == (2, 0)
        first_pid = read_pid(state_dir)
        await link.send(protocol.launch([protocol.attempt_spec("t:1", ["sh", "-c", "exit 3"])]))
        assert (await _until_final(link, "t:1"))["exit_code"] == 3
        await link.close()
        again = await connect_local_agent(state_dir, "node-a", head_id="head-2")
        assert [u["exit_code"] for u in again.hello["attempts"]] == [3]
        await again.send(protocol.ack(["t:1"]))
        await again.close()
        return first_pid, read_pid(state_dir)

    first_pid, second_pid = asyncio.run(scenario())
    assert first_pid == second_pid  # reconnecting reused the running agent
    stop_local_agent(state_dir, kill_jobs=True, timeout_s=10)
    assert _gone(first_pid)
    assert not is_listening(state_dir / "agent.sock")


def _until_gone(pid: int, timeout_s: float = 15) -> bool:
    deadline = time.monotonic() + timeout_s
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _gone(pid)


def test_receive_returns_none_when_the_agent_goes(state_dir: Path) -> None:
    pids: list[int | None] = []

    async def scenario() -> None:
        link = await connect_local_agent(
            state_dir, "node-a", head_id="h", agent_options=["--heartbeat-s", "0.1"]
        )
        assert (await link.receive())["type"] == "heartbeat"
        pids.append(read_pid(state_dir))  # now: a clean shutdown removes the pid file
        await link.send(protocol.shutdown(kill_jobs=False))
        async with asyncio.timeout(15):
            while (message := await link.receive()) is not None:
                assert message["type"] == "heartbeat"
        await link.close()

    asyncio.run(scenario())
    (pid,) = pids
    assert pid is not None and _until_gone(pid), f"agent {pid} still runs after its shutdown"
    assert not is_listening(state_dir / "agent.sock")


def test_agent_survives_the_head_being_killed(state_dir: Path, tmp_path: Path) -> None:
    head_script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from hpcbatch.transport.local import connect_local_agent\n"
        "from hpcbatch import protocol\n"
        "async def main():\n"
        "    link = await connect_local_agent(Path(sys.argv[1]), 'node-a', head_id='doomed')\n"
        "    await link.send(protocol.launch([protocol.attempt_spec('bg', ['sleep', '300'])]))\n"
        "    print('launched', flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    head = subprocess.Popen(
        [sys.executable, "-c", head_script, str(state_dir)], stdout=subprocess.PIPE
    )
    try:
        assert head.stdout is not None and head.stdout.readline() == b"launched\n"
    finally:
        head.kill()
        head.wait()
    agent_pid = read_pid(state_dir)
    assert agent_pid is not None and not _gone(agent_pid)

    async def reconnect() -> dict:
        link = await connect_local_agent(state_dir, "node-a", head_id="heir")
        deadline = time.monotonic() + 15
        hello = link.hello
        while not hello["attempts"] and time.monotonic() < deadline:  # launch may be in flight
            await link.close()
            link = await connect_local_agent(state_dir, "node-a", head_id="heir")
            hello = link.hello
        await link.close()
        return hello

    hello = asyncio.run(reconnect())
    assert [(u["attempt_id"], u["state"]) for u in hello["attempts"]] == [("bg", "RUNNING")]
    assert not _gone(hello["attempts"][0]["pid"])


FAKE_AGENT = """
import os, socket, sys
state_dir, mode = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX)
listener.bind(os.path.join(state_dir, "agent.sock"))
listener.listen()
with open(os.path.join(state_dir, "agent.pid"), "w") as f:
    f.write(str(os.getpid()))
replies = {"garbage": b"not json at all\\n", "v2": b'{"v":2,"type":"hello"}\\n',
           "bad-hello": b'{"v":1,"type":"hello","agent_version":"x"}\\n', "silent": b""}
held = []
while True:
    conn, _ = listener.accept()
    if conn.recv(65536):  # probes connect and leave without a byte
        conn.sendall(replies[mode])
        held.append(conn)
"""


@pytest.fixture
def fake_agent(tmp_path: Path):
    """A process that pretends to be an agent (its argv names hpcbatch_agent)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(mode: str) -> Path:
        directory = tmp_path / f"fake-{mode}"
        directory.mkdir()
        process = subprocess.Popen(
            [sys.executable, "-c", FAKE_AGENT, str(directory), mode, "hpcbatch_agent"]
        )
        started.append(process)
        deadline = time.monotonic() + 15
        while not (is_listening(directory / "agent.sock") and read_pid(directory)):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        return directory

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("mode", "error", "fragment"),
    [
        ("garbage", ProtocolError, "agent on node fake: malformed message: not valid JSON"),
        ("v2", ProtocolError, "agent on node fake speaks another protocol version"),
        ("bad-hello", ProtocolError, "agent on node fake: malformed message: hello lacks"),
        ("silent", TransportError, "agent on node fake sent no hello in 0.3s"),
    ],
)
def test_bad_agents_raise_errors_naming_the_node(
    fake_agent, mode: str, error: type, fragment: str
) -> None:
    directory = fake_agent(mode)
    with pytest.raises(error) as caught:
        asyncio.run(connect_local_agent(directory, "fake", head_id="h", hello_timeout_s=0.3))
    assert fragment in str(caught.value)
    if mode == "silent":
        assert not isinstance(caught.value, ProtocolError)


def test_stop_local_agent_without_an_agent_is_a_no_op(tmp_path: Path) -> None:
    never = tmp_path / "never-started"
    stop_local_agent(never)
    assert not never.exists()  # nothing created
    # A stale pidfile whose PID now names another process: that process is not the agent's to
    # stop, and the directory is left as it was.
    stale = tmp_path / "stale"
    stale.mkdir()
    other = subprocess.Popen(["sleep", "60"])
    try:
        (stale / "agent.pid").write_text(f"{other.pid}\n")
        stop_local_agent(stale, kill_jobs=True, timeout_s=1)
        assert other.poll() is None, "stop_local_agent killed a process that is no agent"
        assert [p.name for p in stale.iterdir()] == ["agent.pid"]
        assert read_pid(stale) == other.pid
    finally:
        other.kill()
        other.wait()


def test_send_on_a_closed_link_is_a_transport_error_under_uvloop(tmp_path: Path) -> None:
    # The head runs on uvloop, whose closed transports raise RuntimeError on write: a link
    # must turn that into the TransportError its callers handle, not an unhandled task error.
    import socket

    import uvloop

    from hpcbatch.transport.local import LocalAgentLink

    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen(1)

        async def scenario() -> None:
            reader, writer = await asyncio.open_unix_connection(path)
            link = LocalAgentLink("n1", reader, writer)
            writer.close()
            await writer.wait_closed()
            with pytest.raises(TransportError, match="agent on node n1: connection lost"):
                await link.send(protocol.head_hello("h"))

        uvloop.run(scenario())
