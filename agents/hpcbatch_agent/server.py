"""The agent daemon's loop: one thread, one selector, one head connection at a time.
(GPU re-detection runs nvidia-smi in a short-lived thread of its own, gpupoll.py, whose
result comes back through the selector: the loop itself never waits on it.)

Vocabulary:
    connection  a client of ``DIR/agent.sock``. Any connection may send requests (a
                probe, ``stop_local_agent``'s shutdown), but only one is the head.
    head        the connection that sent ``hello`` last: a new hello replaces the old head
                (its connection is closed). Updates and heartbeats go only to the head;
                whatever happened before its hello is in the hello's snapshot of the spool.
                Losing the head never touches the jobs.
    turn        one pass of the loop: wait on the selector, handle every ready event (head
                lines, child exits, pidfds, timers), then commit the spool once and send the
                turn's updates as one ``updates`` message. Under load a turn naturally
                covers many launches and exits (coalescing); when idle it covers one, so an
                update leaves within a few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import protocol as p
from .agentlog import log, log_exception
from .cgroups import Cgroups
from .gpupoll import GpuPoller
from .jobs import find_jobs
from .launchserver import LaunchServer
from .logs import read_chunk
from .runner import ADOPTED_POLL_S, Runner, now_ms
from .slurmbridge import SlurmBridge
from .spool import Spool
from .unixsock import bind_listener, peer_refusal

MAX_LINE = 256 * 1024 * 1024
MAX_OUTBUF = 256 * 1024 * 1024
UPDATES_PER_MESSAGE = 1000
MAX_WAIT_S = 3600.0


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.open = True
        self.closing = False  # the head is gone or must go: close once outbuf is flushed
        self.events = selectors.EVENT_READ  # what the selector watches for
        self.write_broken = False  # sending failed: drop output, keep reading to EOF


class AgentServer:
    def __init__(
        self,
        state_dir: Path,
        node: p.NodeInfo,
        *,
        heartbeat_s: float = 2.0,
        kill_grace_s: float = 3.0,
        cgroups: Cgroups | None = None,
        durability: str = "process",
        launch_listener: socket.socket | None = None,
        gpu_poller: GpuPoller | None = None,
        build: str | None = None,
        bridge: Callable[[Spool, Callable[[p.AttemptUpdate], None]], SlurmBridge] | None = None,
    ) -> None:
        """``bridge``: makes the SLURM bridge that takes the runner's place (slurmbridge.py),
        from the spool and the update sink; None: jobs run here."""
        self.state_dir = state_dir
        self.node = node
        self.build = build  # this agent's build id (build.py), reported in every hello
        self.heartbeat_ms = int(heartbeat_s * 1000)
        self.selector = selectors.DefaultSelector()
        self.spool = Spool(state_dir / "spool", durability)
        self.pending: list[p.AttemptUpdate] = []
        self.runner: Runner | SlurmBridge
        self.launches: LaunchServer | None = None
        if bridge is not None:
            self.runner = bridge(self.spool, self._emit)
            self.runner.partitions.on_view = self._tell_head
        else:
            self.runner = Runner(
                state_dir,
                self.spool,
                self.selector,
                self._emit,
                kill_grace_s,
                cgroups,
                node["name"],
            )
            # The MPI launch port (launchserver.py), served in this same loop.
            if launch_listener is not None:
                self.launches = LaunchServer(launch_listener, self.selector, self.runner)
        # GPU re-detection (gpupoll.py): its nvidia-smi is a child this loop reaps.
        self.gpu_poller = gpu_poller
        if gpu_poller is not None:
            other = self.runner.on_other_child

            def child_exited(pid: int, status: int) -> None:
                if not gpu_poller.exits.exited(pid, status) and other is not None:
                    other(pid, status)

            self.runner.on_other_child = child_exited
        self.conns: set[Connection] = set()
        self.head: Connection | None = None
        self.listener: socket.socket | None = None
        self.stop_requested = False
        self.exit_when_idle = False  # shutdown(kill_jobs): exit once every job is reaped
        self._child_exited = False
        self._next_heartbeat = 0
        self._next_poll = 0.0

    # --- lifecycle --------------------------------------------------------------------------

    def serve_forever(self) -> None:
        wake_r, wake_w = socket.socketpair()
        for end in (wake_r, wake_w):
            end.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, self._on_sigchld)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.selector.register(wake_r, selectors.EVENT_READ, ("wake", None))
        if self.gpu_poller is not None:
            self.gpu_poller.register(self.selector)
        self.runner.recover()
        self.runner.sweep_stale_cgroups()
        self.spool.commit()
        self.runner.remove_stale_reaped()  # what recovery took from them is on disk now
        self.listener = bind_listener(self.state_dir / "agent.sock")
        self.selector.register(self.listener, selectors.EVENT_READ, ("listen", None))
        self._child_exited = True  # collect anything that exited before the handler existed
        try:
            while not self._should_exit():
                self._turn()
        finally:
            self._flush_quietly()
            if self.launches is not None:
                self.launches.close()
            if self.gpu_poller is not None:
                self.gpu_poller.close()
            self.runner.close()
            self.spool.close()
            signal.set_wakeup_fd(-1)
            wake_r.close()
            wake_w.close()
            self.listener.close()

    def _emit(self, update: p.AttemptUpdate) -> None:
        self.pending.append(update)
        if self.launches is not None and p.is_final(update):
            self.launches.attempt_ended(update["attempt_id"])  # no command outlives its job

    def _should_exit(self) -> bool:
        if self.stop_requested:
            return True
        return self.exit_when_idle and not self.runner.running

    def _on_sigchld(self, signum: int, frame: Any) -> None:
        self._child_exited = True

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested = True  # SIGTERM/SIGINT: leave, jobs keep running

    def _flush_quietly(self) -> None:
        self._send_pending()
        for conn in list(self.conns):
            conn.sock.setblocking(True)
            conn.sock.settimeout(2.0)
            with contextlib.suppress(OSError):
                conn.sock.sendall(conn.outbuf)
            self._drop(conn)

    # --- the turn ---------------------------------------------------------------------------

    def _turn(self) -> None:
        for key, mask in self.selector.select(self._select_timeout()):
            kind, obj = key.data
            if kind == "wake":
                _drain(key.fileobj)
            elif kind == "listen":
                self._accept()
            elif kind == "conn":
                self._on_conn_event(obj, mask)
            elif kind == "pidfd" and isinstance(self.runner, Runner):
                self.runner.on_pidfd(obj)
            elif kind == "launch" and self.launches is not None:
                self.launches.on_event(obj, mask)
            elif kind == "launch-listen" and self.launches is not None:
                self.launches.accept()
            elif kind == "gpus" and self.gpu_poller is not None:
                self._gpus_changed(self.gpu_poller.collect())
        if self._child_exited:
            self._child_exited = False
            self.runner.reap_children()
        self.runner.run_timers()
        if self.launches is not None:
            self.launches.run_timers()
        if self.gpu_poller is not None:
            self.gpu_poller.run_timers()
        if self.runner.polled and time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + ADOPTED_POLL_S
            self.runner.poll_adopted()
        self._send_pending()
        self._maybe_heartbeat()
        for conn in list(self.conns):
            self._flush(conn)

    def _select_timeout(self) -> float | None:
        if self._child_exited:
            return 0
        deadlines: list[float] = []
        timer = self.runner.next_timer_ms()
        if timer is not None:
            deadlines.append(timer)
        if self.head is not None:
            deadlines.append(self._next_heartbeat)
        if self.runner.polled:
            deadlines.append(now_ms() + ADOPTED_POLL_S * 1000)
        launch_due = self.launches.next_deadline() if self.launches is not None else None
        if launch_due is not None:
            deadlines.append(now_ms() + (launch_due - time.monotonic()) * 1000)
        poll_due = self.gpu_poller.next_due() if self.gpu_poller is not None else None
        if poll_due is not None:
            deadlines.append(now_ms() + (poll_due - time.monotonic()) * 1000)
        if not deadlines:
            return None
        # Bounded: a far deadline (a long job timeout) must not overflow the selector's int.
        return min(MAX_WAIT_S, max(0.0, (min(deadlines) - now_ms()) / 1000))

    def _send_pending(self) -> None:
        # Commit first: nothing is reported before it is on disk.
        self.spool.commit()
        conn = self.head
        if self.pending and conn is not None:
            pending = p.coalesce(self.pending)
            for start in range(0, len(pending), UPDATES_PER_MESSAGE):
                chunk = pending[start : start + UPDATES_PER_MESSAGE]
                conn.outbuf += p.encode(p.updates(chunk))
        self.pending.clear()

    def _gpus_changed(self, message: p.Message | None) -> None:
        """A re-detection changed the node's GPUs (the node, which the next hello carries, is
        updated already): tell the head, after the updates it was sent before."""
        if message is not None:
            self._tell_head(message)

    def _tell_head(self, message: p.Message) -> None:
        """A message beside the updates (gpus, slurm), after the updates sent before it."""
        if self.head is not None:
            self._send_pending()
            self.head.outbuf += p.encode(message)

    def _maybe_heartbeat(self) -> None:
        conn = self.head
        now = now_ms()
        if conn is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_ms
            running = len(self.runner.running)
            conn.outbuf += p.encode(p.heartbeat(now, running, self.runner.cpu.seconds()))

    # --- the connection ---------------------------------------------------------------------

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        refusal = peer_refusal(sock)
        if refusal is not None:
            log(f"refused a connection to agent.sock: {refusal}")
            sock.close()
            return
        sock.setblocking(False)
        conn = Connection(sock)
        self.conns.add(conn)
        self.selector.register(sock, selectors.EVENT_READ, ("conn", conn))

    def _drop(self, conn: Connection) -> None:
        if not conn.open:
            return
        conn.open = False
        self.selector.unregister(conn.sock)
        conn.sock.close()
        self.conns.discard(conn)
        if self.head is conn:
            self.head = None

    def _on_conn_event(self, conn: Connection, mask: int) -> None:
        if not conn.open:
            return
        # Read before writing: a head that sent its last lines and closed must still have
        # them handled even though writing to it now fails.
        if mask & selectors.EVENT_READ:
            self._read(conn)
        if mask & selectors.EVENT_WRITE and conn.open:
            self._flush(conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:  # the head half-closed or went away: answer what it sent, then close
            conn.closing = True
            self._flush(conn)
            return
        conn.inbuf += data
        start = 0
        while conn.open:
            newline = conn.inbuf.find(b"\n", start)
            if newline < 0:
                break
            line = bytes(conn.inbuf[start:newline])
            start = newline + 1
            if line.strip():
                self._handle_line(conn, line)
        del conn.inbuf[:start]
        if len(conn.inbuf) > MAX_LINE and conn.open:
            conn.outbuf += p.encode(p.error("malformed message: line too long"))
            conn.closing = True

    def _flush(self, conn: Connection) -> None:
        if conn.write_broken:
            conn.outbuf.clear()
        try:
            while conn.outbuf:
                sent = conn.sock.send(conn.outbuf)
                del conn.outbuf[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            # The head stopped reading; whatever it still sends is read until EOF.
            conn.outbuf.clear()
            conn.write_broken = True
        if not conn.outbuf and conn.closing:
            self._drop(conn)
            return
        if len(conn.outbuf) > MAX_OUTBUF:
            self._drop(conn)  # a head that does not read will get a fresh hello instead
            return
        events = (0 if conn.closing else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if conn.outbuf else 0
        )
        if events != conn.events:
            conn.events = events
            self.selector.modify(conn.sock, events, ("conn", conn))

    # --- messages ---------------------------------------------------------------------------

    def _handle_line(self, conn: Connection, line: bytes) -> None:
        try:
            message = p.decode(line)
            p.check_head_envelope(message)
        except p.MessageError as exc:
            self._answer_error(conn, exc.reason)
            if exc.fatal:
                conn.closing = True
                conn.inbuf.clear()
                self._flush(conn)
            return
        try:
            self._dispatch(conn, message)
        except Exception as exc:  # one message's failure must never end the agent
            kind = message["type"]
            log_exception(f"handling a {kind!r} message failed")
            if kind == "launch":
                self._settle_failed_batch(message["attempts"], exc)
            self._answer_error(conn, f"agent error handling {kind!r}: {_describe(exc)}")

    def _answer_error(self, conn: Connection, reason: str) -> None:
        self._send_pending()  # the error keeps its place after earlier requests' updates
        conn.outbuf += p.encode(p.error(reason))

    def _dispatch(self, conn: Connection, message: p.Message) -> None:
        kind = message["type"]
        if kind == "hello":
            self._hello(conn)
        elif kind == "launch":
            self._launch(conn, message["attempts"])
        elif kind == "kill":
            self.runner.kill(message["attempt_id"], message["reason"])
        elif kind == "ack":
            self.runner.ack(message["attempt_ids"])
        elif kind == "read_log":
            self._send_pending()  # replies keep their place after earlier requests' updates
            conn.outbuf += p.encode(self._read_log(message))
        elif kind == "shutdown":
            if message["kill_jobs"]:
                self.runner.kill_all("agent shutdown")
                self.exit_when_idle = True
            else:
                self.stop_requested = True

    def _launch(self, conn: Connection, attempts: list[Any]) -> None:
        """Each attempt is checked on its own: a bad one fails to start (or, without a usable
        attempt id, is answered with an error) and the rest of the batch runs."""
        good: list[p.AttemptSpec] = []
        for index, item in enumerate(attempts):
            problem = p.attempt_problem(item, f"launch.attempts[{index}]")
            if problem is None:
                good.append(item)
                continue
            self._answer_error(conn, problem)
            attempt_id = item.get("attempt_id") if isinstance(item, dict) else None
            if isinstance(attempt_id, str) and attempt_id and "\0" not in attempt_id:
                self._refuse(attempt_id, f"CannotStartContainerError: {problem}")
        if good:
            self.runner.launch_batch(good)

    def _refuse(self, attempt_id: str, reason: str) -> None:
        """FAILED_TO_START with ``reason``; an attempt the agent already knows keeps its state
        and has it re-sent, as for any re-sent launch."""
        known = self.runner.current_update(attempt_id)
        if known is not None:
            self.pending.append(known)
            return
        self.runner.fail_to_start(attempt_id, self.runner.log_path(attempt_id), reason)

    def _settle_failed_batch(self, attempts: list[Any], exc: Exception) -> None:
        """A launch whose handling raised: every attempt of it that is neither running nor
        finished fails to start with the error (its intent, if journaled, is superseded), so
        the head never relaunches it into the same failure. A job spawned but not tracked is
        killed: nothing would watch it."""
        reason = f"CannotStartContainerError: agent error: {_describe(exc)}"
        batch: set[str] = set()
        for item in attempts:
            attempt_id = item.get("attempt_id") if isinstance(item, dict) else None
            if not isinstance(attempt_id, str) or attempt_id in self.runner.running:
                continue
            batch.add(attempt_id)
            record = self.spool.records.get(attempt_id)
            if record is not None and record.get("result") is not None:
                continue
            try:
                self.runner.fail_to_start(attempt_id, self.runner.log_path(attempt_id), reason)
            except Exception:
                log_exception(f"cannot fail attempt {attempt_id!r}")
        for attempt_id, pid in find_jobs(str(self.state_dir)).items():
            if attempt_id in batch and attempt_id not in self.runner.running:
                log(f"killing job {pid} of attempt {attempt_id!r}: spawned but not tracked")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def _hello(self, conn: Connection) -> None:
        # The snapshot supersedes whatever the turn had pending, so the head never sees a
        # stale RUNNING after the EXITED that the snapshot already told it.
        self.spool.commit()
        self.pending.clear()
        if self.head is not None and self.head is not conn:
            self._drop(self.head)
        self.head = conn
        conn.outbuf += p.encode(p.agent_hello(self.node, self.runner.all_updates(), self.build))
        if isinstance(self.runner, SlurmBridge) and self.runner.partitions.view is not None:
            conn.outbuf += p.encode(self.runner.partitions.view)
        self._next_heartbeat = now_ms() + self.heartbeat_ms

    def _read_log(self, message: p.Message) -> p.Message:
        attempt_id = message["attempt_id"]
        problem = p.read_log_problem(message)
        if problem is not None:
            return p.log_data(message["req"], attempt_id, "", 0, True, error=f"read_log: {problem}")
        path = self.runner.log_path(attempt_id)
        known = attempt_id in self.spool.records
        if not known and not os.path.exists(path):  # acked attempts keep their logs
            return p.log_data(
                message["req"], attempt_id, "", message["offset"], True, error="no such attempt"
            )
        finished = attempt_id not in self.runner.running
        try:
            text, next_offset, complete = read_chunk(
                path, message["offset"], message["max_bytes"], finished
            )
        except OSError as exc:  # e.g. ELOOP: a symlink where the log belongs is not followed
            error = f"cannot read the log: {exc.strerror}"
            return p.log_data(message["req"], attempt_id, "", message["offset"], True, error=error)
        return p.log_data(message["req"], attempt_id, text, next_offset, complete)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _drain(sock: Any) -> None:
    try:
        while sock.recv(4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass
