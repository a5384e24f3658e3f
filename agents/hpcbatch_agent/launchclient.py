"""The launch client: ``HPCBATCH_LAUNCHER [-x] HOST WORDS...``, what Open MPI (as its rsh
agent) and MPICH Hydra (as its ssh) call to start a daemon on another node of the gang.

It behaves as ssh does for them: the words joined with spaces run under ``/bin/sh -c`` on
HOST, inside that node's job (launchserver.py); stdin, stdout and stderr relayed; the exit
status is the remote one (128 + a signal); 255, with a message on stderr naming the reason,
when the launch cannot happen (HOST outside the gang's HPCBATCH_LAUNCH_PEERS, no key, the
agent unreachable or refusing). Standard library only.

Its start is on the path of every MPI job's start-up: one client per remote daemon, on the main
node, inside the job's CPU allowance. So it is started by :func:`client_command` (this module
alone, ``-I -S``: isolated, and without ``site``'s path set-up, which it does not need) rather
than through main.py's argument parser, and it imports only launchwire and what the wire needs:
~15 ms a start instead of ~70 (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import socket
import sys
import threading

from . import launchwire as w
from .launchwire import ATTEMPT_VAR, LAUNCH_KEY_FILE, LAUNCH_PEERS

HYDRA_PROXY = "hydra_pmi_proxy"  # the command whose environment Hydra leaves to us (mpienv)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~4 ms a start)

if TYPE_CHECKING:
    from typing import BinaryIO

FAILED = 255
CONNECT_TIMEOUT_S = 10.0
ANSWER_FIELDS = {"proof": str}


# argv[1] (popped): the directory or zipapp holding the hpcbatch_agent package.
CLIENT_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from hpcbatch_agent.launchclient import main; sys.exit(main(sys.argv[1:]))"
)


class LaunchFailed(Exception):
    """The launch did not happen; the message says why."""


def client_command(python: str, package_path: str) -> list[str]:
    """argv prefix that runs this client (append ``[-x] HOST WORDS...``): ``python`` isolated
    (-I: no PYTHONPATH, user site or working directory; the job's user controls all three)
    and without site (-S), importing only from ``package_path``, the directory or zipapp the
    agent itself was loaded from."""
    return [python, "-I", "-S", "-c", CLIENT_BOOT, package_path]


def main(argv: list[str]) -> int:
    try:
        return run(argv, os.environ)
    except LaunchFailed as exc:
        print(f"hpcbatch launch: {exc}", file=sys.stderr, flush=True)
        return FAILED


def parse_argv(argv: list[str]) -> tuple[str, str]:
    """(host, the command for ``sh -c``) from ``[-x] HOST WORDS...``."""
    words = list(argv)
    while words and words[0] in ("-x", "-T", "-n", "-q"):  # ssh's, as MPIs pass them
        words.pop(0)
    if len(words) < 2:
        raise LaunchFailed("usage: launch [-x] HOST COMMAND...")
    return words[0], w.shell_command(words[1:])


def run(argv: list[str], env: os._Environ[str] | dict[str, str]) -> int:
    host, command = parse_argv(argv)
    try:
        peers = w.parse_peers(env.get(LAUNCH_PEERS, ""))
    except w.WireError as exc:
        raise LaunchFailed(f"{exc} (is this a multi-node job's process?)") from None
    if host not in peers:
        raise LaunchFailed(
            f"host {host!r} is not a node of this job's allocation "
            f"(HPCBATCH_LAUNCH_PEERS: {', '.join(peers)})"
        )
    key = _read_key(env.get(LAUNCH_KEY_FILE, ""))
    attempt_id = env.get(ATTEMPT_VAR, "")
    if not attempt_id:
        raise LaunchFailed(f"{ATTEMPT_VAR} is not set: not a process of an hpcbatch job")
    try:
        sock = socket.create_connection((host, peers[host]), timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise LaunchFailed(f"cannot reach the agent of {host}:{peers[host]}: {exc}") from None
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        _handshake(sock, reader, key, attempt_id, command, host)
        sock.settimeout(None)
        return _relay(sock, reader)


def forwarded_env(command: str) -> dict[str, str] | None:
    """This process's environment (mpiexec's) for a Hydra proxy, which the pre-wired
    ``HYDRA_ENV=none`` keeps Hydra from forwarding itself (mpienv.rank_environment); None for
    any other command (Open MPI's orted forwards what it forwards)."""
    first = command.split(" ", 1)[0].strip("'\"")
    if first.rsplit("/", 1)[-1] != HYDRA_PROXY:
        return None
    return dict(os.environ)


def _read_key(path: str) -> bytes:
    if not path:
        raise LaunchFailed(f"{LAUNCH_KEY_FILE} is not set: not a process of a multi-node job")
    try:
        with open(path, encoding="ascii") as file:
            text = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise LaunchFailed(f"cannot read the launch key {path}: {exc}") from None
    if not w.is_hex64(text):
        raise LaunchFailed(f"the launch key in {path} is not 64 lowercase hex digits")
    return bytes.fromhex(text)


def _handshake(
    sock: socket.socket, reader: BinaryIO, key: bytes, attempt_id: str, command: str, host: str
) -> None:
    try:
        challenge = w.parse_line(reader.readline(w.MAX_LINE), "challenge", {"nonce": str})
        nonce = os.urandom(32).hex()  # secrets.token_hex's source, without its imports
        env = forwarded_env(command)
        text = w.client_text(challenge["nonce"], nonce, attempt_id, command, env)
        fields = {"env": env} if env is not None else {}
        sock.sendall(
            w.line(
                "request",
                attempt_id=attempt_id,
                command=command,
                nonce=nonce,
                proof=w.proof(key, text),
                **fields,
            )
        )
        data = reader.readline(w.MAX_LINE)
        if b'"refused"' in data:
            reason = w.parse_line(data, "refused", {"reason": str})["reason"]
            raise LaunchFailed(f"the agent of {host} refused the launch: {reason}")
        answer = w.parse_line(data, "accepted", ANSWER_FIELDS)
    except (OSError, w.WireError) as exc:
        raise LaunchFailed(f"launch handshake with {host} failed: {exc}") from None
    if not w.proves(key, w.server_text(challenge["nonce"], nonce), answer["proof"]):
        raise LaunchFailed(f"the agent of {host} does not hold this job's launch key")


def _relay(sock: socket.socket, reader: BinaryIO) -> int:
    """Stdin to the socket (a thread: stdin may be a file, which selectors refuse); frames
    from the socket to stdout and stderr until EXIT. 255 if the agent goes away first."""
    threading.Thread(target=_send_stdin, args=(sock,), daemon=True).start()
    buffer = bytearray()
    while True:
        data = reader.read1(1 << 16)  # type: ignore[attr-defined]
        if not data:
            print("hpcbatch launch: the agent closed the connection", file=sys.stderr)
            return FAILED
        buffer += data
        try:
            frames = w.split_frames(buffer)
        except w.WireError as exc:
            raise LaunchFailed(str(exc)) from None
        for channel, payload in frames:
            if channel == w.EXIT:
                return w.exit_status(payload)
            if payload and channel in (w.STDOUT, w.STDERR):
                _write_all(channel, payload)


def _send_stdin(sock: socket.socket) -> None:
    try:
        while data := os.read(0, 1 << 16):
            sock.sendall(w.frame(w.STDIN, data))
        sock.sendall(w.frame(w.STDIN))
    except OSError:
        pass  # no stdin, or the connection is gone: the main thread sees to the end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
