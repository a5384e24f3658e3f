"""Re-detecting a node's GPUs while the agent runs, without ever blocking its loop.

Vocabulary:
    poll        one nvidia-smi run (up to its 5 s deadline and a kill) in a daemon thread
                started by the loop when the period has passed since the last poll's result;
                the thread hands its GpuDetection back through a pipe the loop's selector
                watches, and ends. So at most one poll runs, and the agent has a second thread
                only while it does.
    sent        what the head last got of the node's GPUs: the ``node`` dict itself, which the
                hello carries and every change updates (so a reconnect's hello resets it).
    change      a poll whose offer (select_gpus of its inventory) or reason differs from the
                node's: the node is updated and a ``gpus`` message is due to the head. A poll
                that failed (nvidia-smi missing, hung, garbage) keeps the node's GPUs and
                changes only the reason: a failed run never takes a GPU out of service. A
                GPU absent from a successful run is absent from the message.
    reaped run  how a poll runs nvidia-smi: the loop, a child subreaper waiting on every
                child (runner.reap_children), reaps it too, so its exit status comes back
                through ``ChildExits`` (the pid is claimed under a lock before the loop can
                look it up) instead of a wait of the thread's own, which would race the loop.

The second thread does not unsettle the rest of the agent, which was written single-threaded:
a job's fork child (forkexec.py) copies only the loop's thread and runs nothing but system
calls before its exec; v1 ``tasks`` moves move the loop's thread alone, so nvidia-smi starts
in the agent's own cgroups; the thread takes no lock the loop holds but ChildExits' and the
result's, each held for a moment. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence

from . import protocol as p
from .capacity import select_gpus
from .gpudevices import GpuDevices, known_minors, read_driver_minors
from .gpus import (
    KILL_WAIT_S,
    NVIDIA_SMI_ARGS,
    GpuDetection,
    Outcome,
    could_not_start,
    detect_gpus,
    timed_out,
)

DEFAULT_POLL_S = 30.0
POLL_VAR = "HPCBATCH_AGENT_GPU_POLL_S"
MAX_OUTPUT = 1 << 20  # nvidia-smi prints a line per board; more is not kept


class ChildExits:
    """Exit statuses of the poll thread's children, handed over by the loop that reaps them."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._claimed: set[int] = set()
        self._statuses: dict[int, int] = {}

    def spawn(self, start: Callable[[], int]) -> int:
        """Run ``start`` (it returns a pid) and claim the pid before the loop can reap it."""
        with self._lock:
            pid = start()
            self._claimed.add(pid)
            return pid

    def exited(self, pid: int, status: int) -> bool:
        """The loop reaped ``pid``: whether it was a claimed child (its status is kept)."""
        with self._lock:
            if pid not in self._claimed:
                return False
            self._claimed.discard(pid)
            self._statuses[pid] = status
            self._lock.notify_all()
            return True

    def wait(self, pid: int, timeout_s: float) -> int | None:
        """The wait status of a claimed ``pid`` once reaped, or None at the deadline."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while pid not in self._statuses:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._claimed.discard(pid)  # a late status is dropped, not kept forever
                    return None
                self._lock.wait(remaining)
            return self._statuses.pop(pid)


def reaped_run(exits: ChildExits) -> Callable[[str, float], Outcome]:
    """A gpus.Runner whose child's status comes from the loop through ``exits``."""

    def run(binary: str, timeout_s: float) -> Outcome:
        deadline = time.monotonic() + timeout_s
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        argv = [binary, *NVIDIA_SMI_ARGS]

        def start() -> int:
            return os.posix_spawn(
                binary, argv, dict(os.environ), file_actions=actions, setsid=True, setsigmask=()
            )

        try:
            pid = exits.spawn(start)
        except OSError as error:
            return could_not_start(error)
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            stdout, stderr, finished = _read_until(out_r, err_r, deadline)
        finally:
            os.close(out_r)
            os.close(err_r)
        status = exits.wait(pid, max(0.0, deadline - time.monotonic())) if finished else None
        if status is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # its session: whatever it started too
            exits.wait(pid, KILL_WAIT_S)
            return timed_out(timeout_s)
        return os.waitstatus_to_exitcode(status), stdout, stderr

    return run


def _read_until(out_fd: int, err_fd: int, deadline: float) -> tuple[str, str, bool]:
    """Both pipes to EOF or the deadline: (stdout, stderr, whether both reached EOF)."""
    chunks: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fd)
                elif len(chunks[key.fd]) < MAX_OUTPUT:
                    chunks[key.fd] += data
        finished = not selector.get_map()
    text = [bytes(chunks[fd]).decode(errors="replace") for fd in (out_fd, err_fd)]
    return text[0], text[1], finished


class GpuPoller:
    """The loop's side: when a poll is due, its result, and what it changes of ``node``."""

    def __init__(
        self,
        node: p.NodeInfo,
        configured: Sequence[int | str] | None,
        period_s: float,
        *,
        devices: GpuDevices | None = None,
        detect: Callable[[], GpuDetection] | None = None,
        nvidia_smi: str | None = None,
    ) -> None:
        self.node = node
        self.configured = configured
        self.period_s = period_s
        self.devices = devices
        self.exits = ChildExits()
        run = reaped_run(self.exits)
        self._detect = detect or (lambda: detect_gpus(run=run, binary=nvidia_smi))
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._result: GpuDetection | None = None
        self._lock = threading.Lock()
        self._due = time.monotonic() + period_s
        self._running = False
        self._closed = False

    def register(self, selector: selectors.BaseSelector) -> None:
        selector.register(self._read_fd, selectors.EVENT_READ, ("gpus", None))

    def next_due(self) -> float | None:
        """When (time.monotonic) the next poll starts; None while one runs."""
        return None if self._running else self._due

    def run_timers(self) -> None:
        """Start a poll in a daemon thread if one is due."""
        if not self._running and time.monotonic() >= self._due:
            self._running = True
            threading.Thread(target=self._poll, name="gpu-poll", daemon=True).start()

    def _poll(self) -> None:
        try:
            result = self._detect()
        except Exception as exc:  # never leave the loop waiting for a poll that died
            result = GpuDetection(reason=f"GPU detection failed: {type(exc).__name__}: {exc}")
        with self._lock:  # after close() the fd number may be another file's
            if self._closed:
                return
            self._result = result
            with contextlib.suppress(BlockingIOError):
                os.write(self._write_fd, b"x")

    def collect(self) -> p.Message | None:
        """The finished poll's ``gpus`` message if it changed the node, else None."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 64):
                pass
        with self._lock:
            result, self._result = self._result, None
        if result is None:
            return None
        self._running = False
        self._due = time.monotonic() + self.period_s
        return self.apply(result)

    def apply(self, detection: GpuDetection) -> p.Message | None:
        gpus: list[p.GpuInfo]
        reason: str | None
        if detection.reason is not None:  # failed: keep the GPUs, tell why
            gpus, reason = self.node["gpus"], detection.reason
        else:
            if self.devices is not None:
                self.devices.learn(
                    known_minors(detection.gpus, read_driver_minors(), self.configured)
                )
            offered = select_gpus(detection, self.configured)
            gpus, reason = offered.gpus, offered.reason
        if (gpus, reason) == (self.node["gpus"], self.node.get("gpus_reason")):
            return None
        self.node["gpus"] = gpus
        if reason is None:
            self.node.pop("gpus_reason", None)
        else:
            self.node["gpus_reason"] = reason
        return p.gpus_update(gpus, reason)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._read_fd)
            os.close(self._write_fd)


def poll_wanted(
    period_s: float,
    node: p.NodeInfo,
    configured: Sequence[int | str] | None,
    nvidia_smi: str | None = None,
) -> bool:
    """Poll only where GPUs may be: the node offers or was configured with some, or
    nvidia-smi is on PATH (or named). A CPU-only host without nvidia-smi pays nothing."""
    if period_s <= 0:
        return False
    return bool(node["gpus"] or configured or nvidia_smi or shutil.which("nvidia-smi"))
