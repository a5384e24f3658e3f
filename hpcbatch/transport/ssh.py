"""The head's link to an agent on a remote host, over one persistent SSH connection.

Vocabulary:
    host      an ``SshHost``: where to connect (address, port, user, key), how to trust it
              (a known_hosts file; trust-on-first-use only when asked for), where the agent
              keeps its state there, and optional capacity overrides.
    install   the agent zipapp (``zipapp.py``) is copied over SFTP to ``<state_dir>/bin/``
              when the file there is missing or its SHA-256 is not this build's (a file with
              the right name is not trusted for its name: ``sha256sum`` checks it, in the same
              exec that makes the directory), under a temporary name then renamed into place,
              and run with the host's ``python3`` in isolated mode (``-I``: nothing from the
              remote working directory or environment, such as PYTHONPATH, is imported).
    channel   one SSH exec channel running ``<pyz> attach``: it relays the protocol to the
              host's agent daemon, starting the daemon if needed. The daemon and its jobs
              outlive the channel; a new channel gets a fresh hello to reconcile from.
    replace   a daemon still running another build than this head's (its hello's
              ``agent_build``: one started before the head was upgraded) is stopped with
              ``<pyz> stop`` (its jobs keep running) before a new ``attach`` starts this
              build, which adopts them; once per stale build (``upgrade.py``).
    line      one protocol message; a host that sends more than ``MAX_LINE`` bytes without
              a newline is disconnected, with the reason logged (the head's memory is not
              the host's to fill).

paramiko is blocking: the connection is made in a worker thread, a reader thread turns channel
lines into messages on an asyncio queue, and sends go through one writer thread per link so
they keep their order without blocking the event loop. TCP_NODELAY is set on the socket
(without it, Nagle + delayed ACK cost ~48 ms per message: see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import secrets
import shlex
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from hpcbatch_agent.build import build_id

from hpcbatch import protocol
from hpcbatch.errors import TransportError
from hpcbatch.protocol import wirejson
from hpcbatch.transport.local import parse_agent_line
from hpcbatch.transport.upgrade import connect_current
from hpcbatch.transport.zipapp import agent_file_name, build_agent_zipapp

CONNECT_TIMEOUT_S = 10.0
HELLO_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20  # a stale agent's exit, when it is replaced (its jobs keep running)
# The longest line a host may send; its largest messages (a hello listing every attempt, a
# log chunk of at most 4 MiB) are far below it.
MAX_LINE = 64 * 1024 * 1024

log = logging.getLogger("hpcbatch.transport.ssh")


@dataclass(frozen=True)
class SshHost:
    name: str
    address: str
    key: Path
    port: int = 22
    user: str = "root"
    known_hosts: Path | None = None
    trust_on_first_use: bool = False
    state_dir: str = "/var/lib/hpcbatch-agent"
    python: str = "python3"
    vcpus: int | None = None
    memory_mib: int | None = None
    gpus: tuple[int | str, ...] | None = None  # indices or UUIDs (head/gpu_config.py)
    nvidia_smi: str | None = None  # where nvidia-smi is on the host, when not on sshd's PATH
    labels: dict[str, str] = field(default_factory=dict)
    agent_durability: str = "process"  # or "power": the agent's spool fsyncs each turn
    agent_options: tuple[str, ...] = ()  # more ``attach`` flags (a SLURM bridge's: --slurm ...)

    def __post_init__(self) -> None:
        if self.trust_on_first_use and self.known_hosts is None:
            raise ValueError(
                f"host {self.name}: trust_on_first_use needs a known_hosts file to record "
                "the first key in (without one, every key would be accepted)"
            )


def _connect_client(host: SshHost) -> paramiko.SSHClient:
    """An authenticated client, host key verified; TransportError names the host and why."""
    where = f"node {host.name} ({host.user}@{host.address}:{host.port})"
    try:
        sock = socket.create_connection((host.address, host.port), timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise TransportError(f"{where}: unreachable: {exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client = paramiko.SSHClient()
    if host.known_hosts is not None and host.known_hosts.exists():
        client.load_host_keys(str(host.known_hosts))  # never the user's own ~/.ssh
    client.set_missing_host_key_policy(host_policy(host))
    try:
        client.connect(
            host.address,
            port=host.port,
            username=host.user,
            key_filename=str(host.key),
            sock=sock,
            allow_agent=False,
            look_for_keys=False,
            timeout=CONNECT_TIMEOUT_S,
            banner_timeout=CONNECT_TIMEOUT_S,
            auth_timeout=CONNECT_TIMEOUT_S,
        )
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        raise TransportError(f"{where}: {connect_error(host, exc)}") from None
    if host.trust_on_first_use and host.known_hosts is not None:
        client.save_host_keys(str(host.known_hosts))
    return client


def host_policy(host: SshHost) -> paramiko.MissingHostKeyPolicy:
    """Unknown host keys are refused, unless the host is trusted on first use (labs)."""
    return paramiko.AutoAddPolicy() if host.trust_on_first_use else paramiko.RejectPolicy()


def connect_error(host: SshHost, exc: BaseException) -> str:
    """Why connecting to ``host`` failed, in words an admin can act on."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return f"host key does not match {host.known_hosts}: refusing to connect"
    if isinstance(exc, paramiko.AuthenticationException):
        return f"authentication failed with key {host.key}: {exc}"
    if isinstance(exc, paramiko.SSHException):
        if "not found in known_hosts" in str(exc):
            return (
                f"unknown host key (not in {host.known_hosts}); add it, or set "
                "trust_on_first_use for a lab"
            )
        return f"SSH failed: {exc}"
    return f"unreachable: {exc}"


def _install_agent(client: paramiko.SSHClient, host: SshHost) -> str:
    """The remote path of this head's agent build, copied there unless the file already
    there has this build's SHA-256."""
    version, data = build_agent_zipapp()
    remote_dir = f"{host.state_dir}/bin"  # f-string: a Path is fine
    remote = f"{remote_dir}/{agent_file_name(version)}"
    found = _run(client, probe_command(remote_dir, remote), host)
    if installed_digest(found) == hashlib.sha256(data).hexdigest():
        return remote
    if found.strip():
        log.warning(
            "node %s: %s is not this build (SHA-256 differs): replacing it", host.name, remote
        )
    tmp = f"{remote}.tmp-{secrets.token_hex(4)}"  # two heads installing never share a name
    with client.open_sftp() as sftp:
        try:
            with sftp.open(tmp, "wb") as out:
                out.write(data)
            sftp.posix_rename(tmp, remote)
        except BaseException:
            with contextlib.suppress(OSError, paramiko.SSHException):
                sftp.remove(tmp)
            raise
    return remote


def probe_command(remote_dir: str, remote: str) -> str:
    """Make the agent's directory and print ``<sha256>  <path>`` of the build there (nothing
    when it is missing), in one round trip."""
    quoted = shlex.quote(remote)
    return f"mkdir -p {shlex.quote(remote_dir)} && {{ sha256sum {quoted} 2>/dev/null || true; }}"


def installed_digest(sha256sum_output: str) -> str | None:
    """The hex digest in ``sha256sum`` output, None when there is none."""
    words = sha256sum_output.split()
    return words[0].lower() if words else None


def _run(
    client: paramiko.SSHClient, command: str, host: SshHost, timeout_s: float = CONNECT_TIMEOUT_S
) -> str:
    """``command``'s standard output; TransportError when it fails."""
    _, stdout, stderr = client.exec_command(command, timeout=timeout_s)
    output: str = stdout.read().decode(errors="replace")
    if stdout.channel.recv_exit_status() != 0:
        detail = (stderr.read().decode(errors="replace") or output).strip()
        raise TransportError(f"node {host.name}: `{command}` failed: {detail}")
    return output


def stop_command(host: SshHost, pyz: str) -> str:
    """Stop the host's agent daemon, whatever its build, leaving its jobs running."""
    argv = [host.python, "-I", pyz, "stop", "--state-dir", str(host.state_dir)]
    return shlex.join([*argv, "--timeout-s", str(STOP_TIMEOUT_S)])


def attach_command(host: SshHost, pyz: str) -> str:
    argv = [
        host.python,
        "-I",  # isolated: no PYTHON* variables, no user site, no working directory on sys.path
        pyz,
        "attach",
        "--state-dir",
        str(host.state_dir),
        "--node-name",
        host.name,
    ]
    if host.vcpus is not None:
        argv += ["--vcpus", str(host.vcpus)]
    if host.memory_mib is not None:
        argv += ["--memory-mib", str(host.memory_mib)]
    if host.gpus is not None:
        argv += ["--gpus", ",".join(map(str, host.gpus))]
    if host.nvidia_smi is not None:
        argv += ["--nvidia-smi", host.nvidia_smi]
    if host.agent_durability != "process":
        argv += ["--durability", host.agent_durability]
    argv += host.agent_options
    return shlex.join(argv)


class SshAgentLink:
    """An AgentLink over an SSH exec channel running ``attach``."""

    max_line = MAX_LINE

    def __init__(self, host: SshHost, client: paramiko.SSHClient, channel: paramiko.Channel):
        self.node_name = host.name
        self.address = host.address  # the host's address: other nodes reach it there (MPI)
        self.hello: dict[str, Any] = {}
        self._client = client
        self._channel = channel
        self._loop = asyncio.get_running_loop()
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._writer = concurrent.futures.ThreadPoolExecutor(1, f"ssh-send-{host.name}")
        self._pending: list[bytes] = []  # pieces of a line still without its newline
        self._pending_size = 0
        self.closed_reason: str | None = None  # why the head hung up, when it did
        # paramiko's transport thread reads the socket; the channel's fileno() is readable
        # while its buffer holds data or the channel has closed, so the event loop reads
        # it: no thread of ours, no hop between threads per message.
        self._fd = channel.fileno()
        self._loop.add_reader(self._fd, self._on_readable)
        self._reading = True  # (uvloop's remove_reader does not say whether it removed)

    def _on_readable(self) -> None:
        channel = self._channel
        if channel.recv_ready():
            try:
                chunk = channel.recv(1 << 16)  # buffered data: returns at once
            except (OSError, paramiko.SSHException):
                chunk = b""
        elif channel.eof_received or channel.closed:
            chunk = b""
        else:
            return  # woken for nothing: wait for the next wake-up
        if not chunk:
            self._stop_reading()
            return
        *lines, rest = chunk.split(b"\n")
        pending = self._pending
        for line in lines:
            whole = b"".join([*pending, line]) if pending else line
            pending = []
            self._inbox.put_nowait(whole + b"\n")
        if lines:
            self._pending_size = 0
        if rest:
            pending.append(rest)  # a long line is joined once, not re-copied per chunk
            self._pending_size += len(rest)
        self._pending = pending
        if self._pending_size > self.max_line:
            self._hang_up(f"sent more than {self.max_line} bytes without a newline")

    def _hang_up(self, reason: str) -> None:
        """Stop reading and close the channel; the reason is logged and kept."""
        self.closed_reason = reason
        log.warning("node %s: %s: disconnecting", self.node_name, reason)
        self._pending, self._pending_size = [], 0
        self._stop_reading()
        with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
            self._channel.close()

    async def send(self, message: dict[str, Any]) -> None:
        # Sent by a thread of its own: a send may wait (a full window, a peer gone quiet),
        # and the event loop must never.
        data = wirejson.encode(message)
        try:
            await self._loop.run_in_executor(self._writer, self._channel.sendall, data)
        except (OSError, paramiko.SSHException, RuntimeError) as exc:
            raise TransportError(f"node {self.node_name}: connection lost: {exc}") from None

    def send_now(self, message: dict[str, Any]) -> Awaitable[None] | None:
        return self.send(message)  # always a hop to the writer thread

    async def receive(self) -> dict[str, Any] | None:
        line = await self._inbox.get()
        if line is None:
            self._inbox.put_nowait(None)  # every later receive sees the close too
            return None
        return parse_agent_line(self.node_name, line)

    def _stop_reading(self) -> None:
        """No more reading: a receive waiting on the link returns None, as do later ones."""
        if self._reading:
            self._reading = False
            with contextlib.suppress(ValueError, OSError, RuntimeError):  # a closed loop
                self._loop.remove_reader(self._fd)
            self._inbox.put_nowait(None)

    async def close(self) -> None:
        self._stop_reading()
        self._channel.close()
        self._client.close()
        self._writer.shutdown(wait=False)


def _open(host: SshHost, stop_first: bool = False) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    """Connect, install, and start ``attach`` (after stopping the running daemon, when
    ``stop_first``: a stale agent being replaced)."""
    client = _connect_client(host)
    try:
        pyz = _install_agent(client, host)
        if stop_first:
            _run(client, stop_command(host, pyz), host, STOP_TIMEOUT_S + CONNECT_TIMEOUT_S)
        transport = client.get_transport()
        assert transport is not None
        channel = transport.open_session()
        channel.exec_command(attach_command(host, pyz))
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        raise TransportError(f"node {host.name}: cannot start the agent: {exc}") from None
    except BaseException:
        client.close()
        raise
    return client, channel


async def connect_ssh_agent(host: SshHost, head_id: str) -> SshAgentLink:
    """Connect, install the agent if needed, attach, and exchange hellos; a daemon of
    another build than this head's is replaced once (``upgrade.connect_current``)."""

    async def connect_once(replacing: bool) -> SshAgentLink:
        return await _attach(host, head_id, replacing)

    where = f"{host.user}@{host.address}:{host.port}:{host.state_dir}"
    return await connect_current(host.name, where, build_id(), connect_once)


async def _attach(host: SshHost, head_id: str, stop_first: bool) -> SshAgentLink:
    client, channel = await asyncio.to_thread(_open, host, stop_first)
    link = SshAgentLink(host, client, channel)
    try:
        await link.send(protocol.head_hello(head_id))
        reply = await asyncio.wait_for(link.receive(), HELLO_TIMEOUT_S)
    except BaseException:
        await link.close()
        raise
    if reply is None or reply.get("type") != "hello":
        ready = channel.recv_stderr_ready() or channel.exit_status_ready()
        stderr = channel.recv_stderr(4096).decode(errors="replace").strip() if ready else ""
        await link.close()
        detail = (
            reply.get("reason") if reply else link.closed_reason or stderr or "the channel closed"
        )
        raise TransportError(f"node {host.name}: the agent did not say hello: {detail}")
    link.hello = reply
    return link
