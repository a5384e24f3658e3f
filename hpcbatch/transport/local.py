"""The head's link to an agent on this machine, over the agent's Unix socket.

Vocabulary:
    local agent  an ``hpcbatch_agent serve`` daemon with its own state dir on the head's
                 machine (one per virtual node). It is started detached, in its own session,
                 so the head dying (even by SIGKILL) leaves it and its jobs running; the next
                 head reconnects and reconciles from the hello.
    pidfile      ``<state dir>/agent.pid``, written by the daemon once it holds its lock.
    build        a local agent runs from the ``hpcbatch_agent`` package beside the head, so
                 its build (hello ``agent_build``) is that package's; one that reports
                 another (an agent left running from before an upgrade) is stopped, its
                 jobs kept, and started again from this package (``upgrade.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from hpcbatch_agent.bootstrap import isolated_command
from hpcbatch_agent.build import build_id
from hpcbatch_agent.statedir import StateDirError, prepare_state_dir
from hpcbatch_agent.unixsock import connect, is_listening

from hpcbatch import protocol
from hpcbatch.errors import ProtocolError, TransportError
from hpcbatch.protocol import wirejson
from hpcbatch.transport.upgrade import connect_current

HELLO_TIMEOUT_S = 10.0
START_TIMEOUT_S = 40.0
STOP_TIMEOUT_S = 20.0  # a stale agent's exit, when it is replaced (then SIGKILL, jobs kept)
STREAM_LIMIT = 256 * 1024 * 1024  # one `updates` line may carry a thousand updates


def parse_agent_line(node_name: str, line: bytes) -> dict[str, Any]:
    """Decode and validate one agent line; ProtocolError names the node."""
    try:
        message = wirejson.decode(line)
        protocol.check_agent_message(message)
    except protocol.MessageError as exc:
        if exc.fatal:
            raise ProtocolError(
                f"agent on node {node_name} speaks another protocol version "
                f"(head speaks {protocol.PROTOCOL_VERSION}): {line[:200]!r}"
            ) from None
        raise ProtocolError(f"agent on node {node_name}: {exc.reason}") from None
    return message


class LocalAgentLink:
    """An AgentLink over asyncio streams (any stream pair speaking the protocol)."""

    def __init__(
        self, node_name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.node_name = node_name
        self.hello: dict[str, Any] = {}
        self._reader = reader
        self._writer = writer
        self._high_water = writer.transport.get_write_buffer_limits()[1]

    async def send(self, message: dict[str, Any]) -> None:
        waiting = self.send_now(message)
        if waiting is not None:
            await waiting

    def send_now(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Written to the socket's buffer at once; an awaitable only while that buffer is over
        its high-water mark or the connection is closing (then draining says what happened).
        A thousand nodes' launches and acks take no task each this way."""
        try:
            self._writer.write(wirejson.encode(message))
        except (ConnectionError, OSError, RuntimeError) as exc:  # uvloop: "handler is closed"
            raise self._lost(exc) from None
        transport = self._writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > self._high_water:
            return self._drain()
        return None

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError) as exc:
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> TransportError:
        return TransportError(f"agent on node {self.node_name}: connection lost: {exc}")

    async def receive(self) -> dict[str, Any] | None:
        try:
            line = await self._reader.readline()
        except (ConnectionError, OSError):
            return None
        except ValueError as exc:  # a line over STREAM_LIMIT
            raise ProtocolError(f"agent on node {self.node_name}: {exc}") from None
        if not line.endswith(b"\n"):
            return None  # EOF, possibly mid-line: the connection is gone
        return parse_agent_line(self.node_name, line)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


def read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / "agent.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _pid_is_agent(pid: int) -> bool:
    """Alive (not a zombie) and really an agent: the pidfile may be stale and reused."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat[stat.rfind(")") + 2 :].split()[0]
    is_agent = b"hpcbatch_agent" in cmdline or b"/hpcbatch-agent-" in cmdline  # module or zipapp
    return is_agent and state != "Z"


def agent_running(state_dir: Path) -> bool:
    pid = read_pid(state_dir)
    return pid is not None and _pid_is_agent(pid) and is_listening(state_dir / "agent.sock")


async def _start_agent(state_dir: Path, node_name: str, python: str, options: list[str]) -> None:
    # Isolated (-I) and in its own state dir: the agent may run as root, so nothing from
    # the head's working directory or PYTHONPATH may be imported into it (bootstrap.py).
    command = [
        *isolated_command(python),
        "serve",
        "--detach",
        "--state-dir",
        str(state_dir),
        "--node-name",
        node_name,
        *options,
    ]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=state_dir,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise TransportError(
            f"agent for node {node_name} did not start in {START_TIMEOUT_S}s"
        ) from None
    if process.returncode != 0:
        text = output.decode(errors="replace").strip()
        raise TransportError(f"agent for node {node_name} failed to start: {text}")


def _serve_options(
    vcpus: int | None, memory_mib: int | None, gpus: list[int | str] | None, extra: list[str]
) -> list[str]:
    options: list[str] = []
    if vcpus is not None:
        options += ["--vcpus", str(vcpus)]
    if memory_mib is not None:
        options += ["--memory-mib", str(memory_mib)]
    if gpus is not None:
        options += ["--gpus", ",".join(str(gpu) for gpu in gpus)]
    return options + extra


async def connect_local_agent(
    state_dir: Path,
    node_name: str,
    *,
    vcpus: int | None = None,
    memory_mib: int | None = None,
    gpus: list[int | str] | None = None,
    head_id: str,
    python: str = sys.executable,
    hello_timeout_s: float = HELLO_TIMEOUT_S,
    agent_options: list[str] | None = None,
) -> LocalAgentLink:
    """Start the node's agent if it is not running, connect, and exchange hellos; an agent
    of another build than this package's is replaced once (``upgrade.connect_current``).

    ``agent_options`` are extra ``serve`` flags (e.g. ``["--heartbeat-s", "0.5"]``), used
    only when the agent has to be started. Capacity overrides also apply only then."""
    state_dir = Path(state_dir).resolve()
    options = _serve_options(vcpus, memory_mib, gpus, agent_options or [])

    async def connect_once(replacing: bool) -> LocalAgentLink:
        if replacing:  # its jobs keep running: the new agent adopts them
            await asyncio.to_thread(stop_local_agent, state_dir, False, STOP_TIMEOUT_S)
        return await _connect_local(state_dir, node_name, head_id, python, hello_timeout_s, options)

    return await connect_current(node_name, str(state_dir), build_id(), connect_once)


async def _connect_local(
    state_dir: Path,
    node_name: str,
    head_id: str,
    python: str,
    hello_timeout_s: float,
    options: list[str],
) -> LocalAgentLink:
    try:
        prepare_state_dir(state_dir)  # as the agent will: the head runs as the agent's uid
    except (StateDirError, OSError) as exc:
        raise TransportError(f"agent for node {node_name} not started: {exc}") from None
    if not agent_running(state_dir):
        await _start_agent(state_dir, node_name, python, options)
    return await open_agent_link(state_dir / "agent.sock", node_name, head_id, hello_timeout_s)


async def open_agent_link(
    path: Path, node_name: str, head_id: str, hello_timeout_s: float = HELLO_TIMEOUT_S
) -> LocalAgentLink:
    """Connect to an agent listening on the Unix socket ``path`` and exchange hellos: the
    link every local agent is reached by (also simulated ones: bench/simnodes.py)."""
    try:
        sock = connect(path, timeout_s=5.0)
    except OSError as exc:
        raise TransportError(f"cannot connect to the agent of node {node_name}: {exc}") from None
    sock.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=STREAM_LIMIT)
    link = LocalAgentLink(node_name, reader, writer)
    try:
        await link.send(protocol.head_hello(head_id))
        link.hello = await _await_hello(link, hello_timeout_s)
    except BaseException:
        await link.close()
        raise
    return link


async def _await_hello(link: LocalAgentLink, timeout_s: float) -> dict[str, Any]:
    try:
        reply = await asyncio.wait_for(link.receive(), timeout_s)
    except TimeoutError:
        raise TransportError(
            f"agent on node {link.node_name} sent no hello in {timeout_s}s"
        ) from None
    if reply is None:
        raise TransportError(f"agent on node {link.node_name} closed the connection before hello")
    if reply["type"] == "error":
        raise ProtocolError(f"agent on node {link.node_name} refused hello: {reply['reason']}")
    if reply["type"] != "hello":
        raise ProtocolError(f"agent on node {link.node_name} answered hello with {reply['type']!r}")
    return reply


def _exited(pid: int) -> bool:
    # Not _pid_is_agent: an exiting process loses its cmdline before it is a zombie.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X")


def _wait_gone(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if _exited(pid):
            return True
        time.sleep(0.02)  # polling another process's exit, bounded by the deadline
    return _exited(pid)


def stop_local_agent(state_dir: Path, kill_jobs: bool = True, timeout_s: float = 10) -> None:
    """Ask the agent to shut down (SIGTERM if it does not listen), wait for its PID to exit;
    SIGKILL at the deadline. A state dir with no running agent is a no-op."""
    state_dir = Path(state_dir).resolve()
    pid = read_pid(state_dir)
    if pid is None or not _pid_is_agent(pid):
        return
    deadline = time.monotonic() + timeout_s
    try:
        with connect(state_dir / "agent.sock", timeout_s=2.0) as sock:
            sock.sendall(protocol.encode(protocol.shutdown(kill_jobs)))
    except OSError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, deadline):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, time.monotonic() + 5):
        raise TransportError(f"agent {pid} in {state_dir} did not stop")
