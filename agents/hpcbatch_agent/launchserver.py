"""The agent's launch server: starts a command for a gang node's job on behalf of a launch
client on another node of the gang (``mpirun``'s remote daemons), as ssh would, but inside
the job's allocation (docs/mpi.md §5).

Vocabulary:
    session   one client connection: the handshake (launchwire.py; refused with a reason,
              logged, closed, unless the client proves the key of a gang attempt this agent
              runs now), then the command and its stdio relay.
    command   ``/bin/sh -c <command>`` started like the attempt's own job (spawn.py): its
              user, its cgroup slot, its environment and working directory, a new session;
              its stdin, stdout and stderr are pipes relayed as frames. It is a child of the
              agent (runner.on_other_child reports its end).
    hang-up   the client's connection closing before the command's end: the command's
              process group is SIGKILLed. So is every command of an attempt that ends
              (attempt_ended); what left the group stays in the attempt's slot, whose kill
              (runner.kill) reaches it.
It runs inside the agent's single-threaded selector loop: nothing here blocks.
Standard library only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import selectors
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from . import launchwire as w
from .agentlog import log, log_exception
from .mpienv import rank_environment
from .runner import Runner
from .spawn import spawn_jobs

HANDSHAKE_S = 10.0
BUFFER_LIMIT = 1 << 20  # stop reading a side whose other side lags this far behind
REQUEST_FIELDS = {"attempt_id": str, "command": str, "nonce": str, "proof": str}


@dataclass(eq=False)
class Session:
    sock: socket.socket
    peer: str
    nonce: str
    deadline: float | None  # monotonic: the request must have come by then
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    attempt_id: str | None = None  # the attempt whose job the command belongs to
    pid: int | None = None
    status: int | None = None  # the command's wait status, once reaped
    stdin: int | None = None  # the write end of the command's stdin
    stdin_buf: bytearray = field(default_factory=bytearray)
    stdin_eof: bool = False
    outputs: dict[int, int] = field(default_factory=dict)  # read fd -> channel
    closing: bool = False  # close once outbuf is sent
    closed: bool = False
    watched: dict[int, int] = field(default_factory=dict)  # fd -> selector events


class LaunchServer:
    def __init__(self, listener: socket.socket, selector: selectors.BaseSelector, runner: Runner):
        self.listener = listener
        self.selector = selector
        self.runner = runner
        self.sessions: set[Session] = set()
        self.by_pid: dict[int, Session] = {}
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, ("launch-listen", None))
        runner.on_other_child = self.child_exited

    # --- events from the agent's loop ---------------------------------------------------------

    def accept(self) -> None:
        try:
            sock, address = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = Session(
            sock,
            f"{address[0]}:{address[1]}",
            secrets.token_hex(32),
            time.monotonic() + HANDSHAKE_S,
        )
        session.outbuf += w.line("challenge", nonce=session.nonce)
        self.sessions.add(session)
        self._update(session)

    def on_event(self, data: tuple[Session, int], mask: int) -> None:
        """One session's fd is ready. A failure ends that session, never the agent."""
        session = data[0]
        try:
            self._on_event(data, mask)
        except Exception:
            log_exception(f"launch session from {session.peer} failed; its command is killed")
            self._kill(session)
            with contextlib.suppress(Exception):
                self._close(session)

    def _on_event(self, data: tuple[Session, int], mask: int) -> None:
        session, fd = data
        if session.closed:
            return
        if fd == session.sock.fileno():
            if mask & selectors.EVENT_READ:
                self._read_sock(session)
            if mask & selectors.EVENT_WRITE and not session.closed:
                self._write_sock(session)
        elif fd == session.stdin:
            self._write_stdin(session)
        elif fd in session.outputs:
            self._read_output(session, fd)
        if not session.closed:
            self._update(session)

    def child_exited(self, pid: int, status: int) -> None:
        session = self.by_pid.pop(pid, None)
        if session is not None:
            session.status = status
            self._maybe_exit(session)
            if not session.closed:
                self._update(session)

    def attempt_ended(self, attempt_id: str) -> None:
        for session in list(self.sessions):
            if session.attempt_id == attempt_id:
                self._kill(session)

    def next_deadline(self) -> float | None:
        deadlines = [s.deadline for s in self.sessions if s.deadline is not None]
        return min(deadlines, default=None)

    def run_timers(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions):
            if session.deadline is not None and session.deadline <= now:
                self._refuse(session, f"no launch request within {HANDSHAKE_S:g} s")

    def close(self) -> None:
        for session in list(self.sessions):
            self._kill(session)
            self._close(session)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        self.listener.close()

    # --- the handshake ------------------------------------------------------------------------

    def _read_sock(self, session: Session) -> None:
        try:
            data = session.sock.recv(1 << 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client hung up (or died): nothing more to relay
            self._kill(session)
            self._close(session)
            return
        session.inbuf += data
        if session.deadline is not None:
            self._handshake(session)
        elif session.pid is not None or session.status is not None:
            self._take_frames(session)

    def _handshake(self, session: Session) -> None:
        newline = session.inbuf.find(b"\n")
        if newline < 0:
            if len(session.inbuf) > w.MAX_LINE:
                self._refuse(session, "malformed launch message: request line too long")
            return
        data = bytes(session.inbuf[:newline])
        del session.inbuf[: newline + 1]
        session.deadline = None
        try:
            request = w.parse_line(data, "request", REQUEST_FIELDS)
        except w.WireError as exc:
            self._refuse(session, str(exc))
            return
        problem = w.request_problem(request)
        if problem is not None:
            self._refuse(session, f"malformed launch message: request: {problem}")
            return
        self._authorize(session, request)

    def _authorize(self, session: Session, request: dict[str, Any]) -> None:
        env = request.get("env")
        text = w.client_text(
            session.nonce, request["nonce"], request["attempt_id"], request["command"], env
        )
        for attempt_id, gang in self.runner.gangs.items():
            run = self.runner.running.get(attempt_id)
            if (
                run is None
                or run.kill_reason is not None
                or not w.proves(gang.key, text, request["proof"])
            ):
                continue
            answer = w.proof(gang.key, w.server_text(session.nonce, request["nonce"]))
            session.attempt_id = attempt_id
            if self._start(session, request["command"], env):
                session.outbuf += w.line("accepted", proof=answer)
                log(
                    f"launch from {session.peer} (attempt {request['attempt_id']!r}) into "
                    f"attempt {attempt_id!r}: process {session.pid}"
                )
            return
        self._refuse(
            session,
            f"the proof of attempt {request['attempt_id']!r} matches the key "
            "of no gang attempt this agent runs now",
        )

    def _refuse(self, session: Session, reason: str) -> None:
        log(f"launch from {session.peer} refused: {reason}")
        session.deadline = None
        session.outbuf += w.line("refused", reason=reason)
        session.closing = True
        self._update(session)

    # --- the command --------------------------------------------------------------------------

    def _start(self, session: Session, command: str, forwarded: dict[str, str] | None) -> bool:
        """Start ``command`` in the session's attempt's job; ``forwarded``: the caller's
        environment, where it sent one, over the job's except the node's own variables."""
        gang = self.runner.gangs[str(session.attempt_id)]
        env = gang.request.env
        if forwarded is not None:
            env = rank_environment(env, forwarded)
        stdin_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        request = dataclasses.replace(
            gang.request,
            program="/bin/sh",
            command=["/bin/sh", "-c", command],
            env=env,
            stdio=(stdin_r, out_w, err_w),
            log_path="",
        )
        try:
            (outcome,) = spawn_jobs([request], self.runner.cgroups, self.runner._state)
        finally:
            for fd in (stdin_r, out_w, err_w):
                os.close(fd)
        if isinstance(outcome, str):
            for fd in (stdin_w, out_r, err_r):
                os.close(fd)
            self._refuse(session, f"cannot start the command: {outcome}")
            return False
        session.pid = outcome[0]
        self.by_pid[session.pid] = session
        session.stdin = stdin_w
        session.outputs = {out_r: w.STDOUT, err_r: w.STDERR}
        for fd in (stdin_w, out_r, err_r):
            os.set_blocking(fd, False)
        return True

    def _take_frames(self, session: Session) -> None:
        try:
            frames = w.split_frames(session.inbuf)
        except w.WireError as exc:
            log(f"launch from {session.peer}: {exc}; its command is killed")
            self._kill(session)
            self._close(session)
            return
        for channel, payload in frames:
            if channel != w.STDIN:
                continue  # a client sends only stdin
            if payload:
                session.stdin_buf += payload
            else:
                session.stdin_eof = True
        self._write_stdin(session)

    def _write_stdin(self, session: Session) -> None:
        if session.stdin is None:
            session.stdin_buf.clear()
            return
        try:
            while session.stdin_buf:
                written = os.write(session.stdin, session.stdin_buf)
                del session.stdin_buf[:written]
        except BlockingIOError:
            return
        except OSError:  # the command closed its stdin: what is left goes nowhere
            session.stdin_buf.clear()
            session.stdin_eof = True
        if session.stdin_eof:
            self._forget_fd(session, session.stdin)
            session.stdin = None

    def _read_output(self, session: Session, fd: int) -> None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        channel = session.outputs[fd]
        session.outbuf += w.frame(channel, data)
        if not data:
            del session.outputs[fd]
            self._forget_fd(session, fd)
            self._maybe_exit(session)

    def _maybe_exit(self, session: Session) -> None:
        if session.status is None or session.outputs or session.closing or session.closed:
            return
        status = session.status
        if os.WIFSIGNALED(status):
            payload = w.exit_payload(None, os.WTERMSIG(status))
        else:
            payload = w.exit_payload(os.waitstatus_to_exitcode(status), None)
        session.outbuf += w.frame(w.EXIT, payload)
        session.closing = True

    def _kill(self, session: Session) -> None:
        if session.pid is not None and session.status is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(session.pid, signal.SIGKILL)

    # --- the socket and the selector ----------------------------------------------------------

    def _write_sock(self, session: Session) -> None:
        try:
            while session.outbuf:
                sent = session.sock.send(session.outbuf)
                del session.outbuf[:sent]
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._kill(session)
            self._close(session)
            return
        if session.closing:
            self._close(session)

    def _update(self, session: Session) -> None:
        """Watch each fd for what the session needs from it now."""
        if session.closing and not session.outbuf:
            self._close(session)
            return
        reading = len(session.stdin_buf) < BUFFER_LIMIT and not session.closing
        sock_events = (selectors.EVENT_READ if reading else 0) | (
            selectors.EVENT_WRITE if session.outbuf else 0
        )
        self._watch(session, session.sock.fileno(), sock_events)
        if session.stdin is not None:
            waiting = session.stdin_buf or session.stdin_eof
            self._watch(session, session.stdin, selectors.EVENT_WRITE if waiting else 0)
        for fd in session.outputs:
            lagging = len(session.outbuf) >= BUFFER_LIMIT
            self._watch(session, fd, 0 if lagging else selectors.EVENT_READ)

    def _watch(self, session: Session, fd: int, events: int) -> None:
        current = session.watched.get(fd, 0)
        if events == current:
            return
        if not events:
            self.selector.unregister(fd)
            del session.watched[fd]
        elif not current:
            self.selector.register(fd, events, ("launch", (session, fd)))
        else:
            self.selector.modify(fd, events, ("launch", (session, fd)))
        if events:
            session.watched[fd] = events

    def _forget_fd(self, session: Session, fd: int) -> None:
        if session.watched.pop(fd, 0):
            self.selector.unregister(fd)
        os.close(fd)

    def _close(self, session: Session) -> None:
        if session.closed:
            return
        session.closed = True
        for fd in session.watched:
            self.selector.unregister(fd)
        session.watched.clear()
        for fd in [*session.outputs, *([session.stdin] if session.stdin is not None else [])]:
            os.close(fd)
        session.outputs.clear()
        session.stdin = None
        session.sock.close()
        self.sessions.discard(session)
