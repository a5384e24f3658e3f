"""Starting, killing, reaping and re-adopting job processes.

Vocabulary:
    wrapper    a ``/bin/sh`` process per attempt (WRAPPER below), spawned with
               posix_spawn in a new session, so its process group holds the whole job tree.
               It first moves itself into the attempt's cgroups (see cgroups.py), so the
               job never runs outside its limits, then runs the command in a forked
               child, waits, and writes ``exit <status>``
               to the attempt's status file before exiting with the same status. The
               wrapper is the job's shim: it outlives the agent, so a job that finishes
               while no agent runs still leaves its true exit status behind.
    status file ``DIR/status/<safe id>``: the wrapper's last word. It is read only after the
               wrapper has exited, so a single small write needs no tmp + rename; a missing
               or malformed file means the wrapper itself was killed.
    running    an attempt whose wrapper is alive; a child of this agent (reaped through
               SIGCHLD + waitid) or, after an agent restart, adopted (watched via a pidfd).
    result     the final update (EXITED / FAILED_TO_START); decided once, journaled in the
               spool before it is reported, never changed afterwards.

Exit statuses follow the shell convention: a status of 128+N with 1 <= N <= 64 is reported
as "killed by signal N" (exit_code null). A job that itself calls ``exit 130`` is therefore
reported as signal 2; sh cannot tell the two apart, and every shell user sees the same.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import selectors
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import protocol as p
from .cgroups import OOM_REASON, Cgroups
from .slots import Slot, SlotPool
from .spool import Spool, attempt_id_from_name, safe_name
from .users import run_as
from .wrappers import WRAPPER_TAG, find_wrappers, wrapper_alive, wrapper_cgroups

__all__ = ["Runner", "Running", "find_wrappers"]  # find_wrappers: kept for older imports

SH = "/bin/sh"
# $1 status file, $2 working directory, then the cgroup files to join, "--" and the command.
# Joining is a builtin "echo 0" (0 = the writer itself) per hierarchy, before the fork, so
# every process of the job starts inside its cgroups. The trap keeps the wrapper alive through the SIGTERM meant
# for the job (a trapped signal waits for the foreground child); "( exec ... )" forces a
# real exec even for names that are also shell builtins.
WRAPPER = """f=$1; d=$2; shift 2
while [ "$1" != -- ]; do echo 0 >"$1" || { echo nocgroup >"$f"; exit 126; }; shift; done
shift
trap : HUP INT TERM
cd -- "$d" 2>/dev/null || { echo nocwd >"$f"; exit 126; }
( exec "$@" )
s=$?
echo "exit $s" >"$f"
exit $s
"""
INHERITED_ENV = ("PATH", "HOME", "LANG", "USER", "SHELL")
LOST_REASON = "lost: the job's wrapper ended without recording an exit status"
# The wrapper's markers for a job it never started, and what they are reported as.
START_FAILURES = {
    "nocwd": "CannotStartContainerError: working directory vanished before start",
    "nocgroup": "CannotStartContainerError: the job could not join its cgroup",
}
ADOPTED_POLL_S = 0.5


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def split_shell_status(status: int) -> tuple[int | None, int | None]:
    """(exit_code, signal) from a shell's ``$?``."""
    if 128 < status <= 128 + 64:
        return None, status - 128
    return status, None


@dataclass
class Running:
    attempt_id: str
    pid: int
    status_path: str
    child: bool  # False once adopted by a restarted agent: no wait status then
    slot: Slot | None  # the attempt's cgroups (None: unenforced)
    kill_reason: str | None = None
    signal_sent: int | None = None
    pidfd: int | None = None


class Runner:
    """Owns the job processes of one agent. Updates go to ``emit``; the caller commits the
    spool before sending them."""

    def __init__(
        self,
        state_dir: Path,
        spool: Spool,
        selector: selectors.BaseSelector,
        emit: Callable[[p.AttemptUpdate], None],
        kill_grace_s: float = 3.0,
        cgroups: Cgroups | None = None,
    ) -> None:
        self.spool = spool
        self.cgroups = cgroups or Cgroups.disabled()
        self.slots = SlotPool(self.cgroups)
        self.selector = selector
        self.emit = emit
        self.kill_grace_ms = int(kill_grace_s * 1000)
        self.logs_dir = state_dir / "logs"
        self.status_dir = state_dir / "status"
        self.work_dir = state_dir / "work"
        for directory in (self.logs_dir, self.status_dir, self.work_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # Plain strings for the per-launch hot path (pathlib costs ~10 us per join).
        self._logs = str(self.logs_dir)
        self._status = str(self.status_dir)
        self._work = str(self.work_dir)
        self.running: dict[str, Running] = {}
        self.by_pid: dict[int, Running] = {}
        self.polled: set[str] = set()  # adopted without a pidfd (old kernels)
        self._timers: list[tuple[int, int, str, str]] = []  # (due_ms, seq, kind, attempt_id)
        self._seq = 0
        self._resolved: dict[tuple[str, str], str | None] = {}
        self._slots_due: int | None = None  # when the pending "slots" timer fires
        self.base_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        self.base_env.setdefault("PATH", os.defpath)

    # --- reporting --------------------------------------------------------------------------

    def log_path(self, attempt_id: str) -> str:
        return str(self.logs_dir / f"{safe_name(attempt_id)}.log")

    def current_update(self, attempt_id: str) -> p.AttemptUpdate | None:
        record = self.spool.records.get(attempt_id)
        if record is None:
            return None
        if record.get("result") is not None:
            result: p.AttemptUpdate = record["result"]
            return result
        return p.attempt_update(
            attempt_id,
            p.RUNNING,
            record["log_path"],
            pid=record["pid"],
            started_at_ms=record["started_at_ms"],
        )

    def all_updates(self) -> list[p.AttemptUpdate]:
        found = (self.current_update(aid) for aid in list(self.spool.records))
        return [update for update in found if update is not None]

    # --- launching --------------------------------------------------------------------------

    def launch_batch(self, specs: Iterable[p.AttemptSpec]) -> None:
        self._resolved.clear()  # PATH lookups are cached for one batch only
        for spec in specs:
            self.launch(spec)

    def launch(self, spec: p.AttemptSpec) -> None:
        attempt_id = spec["attempt_id"]
        known = self.current_update(attempt_id)
        if known is not None:  # a re-sent launch: report, never run twice
            self.emit(known)
            return
        safe = safe_name(attempt_id)
        log_path = f"{self._logs}/{safe}.log"
        env = {**self.base_env, **spec["env"]}
        if spec["gpus"]:
            visible = ",".join(str(index) for index in spec["gpus"])
            env["CUDA_VISIBLE_DEVICES"] = env["NVIDIA_VISIBLE_DEVICES"] = visible
        command = list(spec["command"])
        who = run_as(spec["user"]) if spec.get("user") else None
        if isinstance(who, str):
            self._fail_to_start(attempt_id, log_path, who)
            return
        auto_dir = spec["cwd"] is None
        cwd = f"{self._work}/{safe}" if auto_dir else str(spec["cwd"])
        if auto_dir:
            with contextlib.suppress(FileExistsError):
                os.mkdir(cwd)
            if who is not None:
                os.chown(cwd, who.uid, who.gid)  # the job's own scratch directory
        if who is not None:
            env.update(who.env)
            command = who.prefix + command
        problem = self._start_problem(spec["command"][0], cwd, env["PATH"])
        if problem is not None:
            if auto_dir:
                os.rmdir(cwd)
            self._fail_to_start(attempt_id, log_path, problem)
            return
        status_path = f"{self._status}/{safe}"
        slot: Slot | None = None
        try:
            if self.slots.active:
                slot = self.slots.acquire(spec["vcpus"], spec["memory_mib"])
            joins = slot.joins if slot is not None else []
            pid = self._spawn(command, env, cwd, status_path, log_path, joins)
        except OSError as exc:
            if slot is not None:
                self.slots.finish(slot, None, now_ms())
            self._fail_to_start(attempt_id, log_path, f"CannotStartContainerError: {exc}")
            return
        record: dict[str, Any] = {
            "attempt_id": attempt_id,
            "pid": pid,
            "started_at_ms": now_ms(),
            "timeout_s": spec["timeout_s"],
            "log_path": log_path,
            "status_path": status_path,
            "work_dir": cwd if auto_dir else None,
            "cgroups": slot.dirs if slot is not None else [],
            "oom_base": slot.oom_base if slot is not None else 0,
        }
        self.spool.record_start(record)
        self._track(Running(attempt_id, pid, status_path, True, slot), record)
        self.emit(
            p.attempt_update(
                attempt_id, p.RUNNING, log_path, pid=pid, started_at_ms=record["started_at_ms"]
            )
        )

    def _spawn(
        self,
        command: list[str],
        env: dict[str, str],
        cwd: str,
        status_path: str,
        log_path: str,
        joins: list[str],
    ) -> int:
        argv = [SH, "-c", WRAPPER, WRAPPER_TAG, status_path, cwd, *joins, "--", *command]
        file_actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # setsid: the job tree gets its own session and process group, so killpg reaches
        # all of it and nothing reaches it when the agent or the head dies.
        return os.posix_spawn(SH, argv, env, file_actions=file_actions, setsid=True)

    def _start_problem(self, program: str, cwd: str, path: str) -> str | None:
        if not os.path.isdir(cwd):
            return f"CannotStartContainerError: working directory does not exist: {cwd}"
        key = (program, cwd if "/" in program else path)
        if key not in self._resolved:
            self._resolved[key] = _resolve_problem(program, cwd, path)
        return self._resolved[key]

    def _fail_to_start(self, attempt_id: str, log_path: str, reason: str) -> None:
        try:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(reason + "\n")
        except OSError:
            pass
        result = p.attempt_update(
            attempt_id, p.FAILED_TO_START, log_path, stopped_at_ms=now_ms(), reason=reason
        )
        self.spool.record_end(result)
        self.emit(result)

    def _track(self, run: Running, record: dict[str, Any]) -> None:
        self.running[run.attempt_id] = run
        self.by_pid[run.pid] = run
        if record.get("timeout_s") is not None and record.get("started_at_ms") is not None:
            due = record["started_at_ms"] + int(record["timeout_s"]) * 1000
            self._schedule(due, "timeout", run.attempt_id)

    def _untrack(self, run: Running) -> None:
        self.running.pop(run.attempt_id, None)
        self.by_pid.pop(run.pid, None)
        self.polled.discard(run.attempt_id)
        if run.pidfd is not None:
            self.selector.unregister(run.pidfd)
            os.close(run.pidfd)

    # --- killing and timers -----------------------------------------------------------------

    def kill(self, attempt_id: str, reason: str) -> None:
        """SIGTERM to the job's process group now, SIGKILL after the grace period."""
        run = self.running.get(attempt_id)
        if run is None or run.kill_reason is not None:
            return  # unknown, finished, or already being killed: a no-op
        run.kill_reason = reason
        self.spool.record_kill(attempt_id, reason)
        self._signal(run, signal.SIGTERM)
        self._schedule(now_ms() + self.kill_grace_ms, "escalate", attempt_id)

    def kill_all(self, reason: str) -> None:
        for attempt_id in list(self.running):
            self.kill(attempt_id, reason)

    def _signal(self, run: Running, signum: int) -> None:
        run.signal_sent = signum
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.pid, signum)
        if run.slot is not None:  # also whatever left the process group
            self.cgroups.kill(run.slot.dirs, signum)

    def _schedule(self, due_ms: int, kind: str, attempt_id: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due_ms, self._seq, kind, attempt_id))

    def next_timer_ms(self) -> int | None:
        return self._timers[0][0] if self._timers else None

    def run_timers(self) -> None:
        now = now_ms()
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, attempt_id = heapq.heappop(self._timers)
            if kind == "slots":
                self._slots_due = None
                self.slots.tick(now)
                self._arm_slots_timer()
                continue
            run = self.running.get(attempt_id)
            if run is None:
                continue
            if kind == "timeout":
                self.kill(attempt_id, p.TIMEOUT_REASON)
            elif kind == "escalate":
                self._signal(run, signal.SIGKILL)

    # --- noticing exits ---------------------------------------------------------------------

    def reap_children(self) -> None:
        """Collect every exited child. Stragglers the job left in its process group are
        killed while the wrapper is still a zombie, so its pgid cannot have been reused."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            run = self.by_pid.get(info.si_pid)
            if run is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(info.si_pid, signal.SIGKILL)
            _, status = os.waitpid(info.si_pid, 0)
            if run is not None:
                self._finish(run, status)

    def on_pidfd(self, run: Running) -> None:
        self._finish(run, None)

    def poll_adopted(self) -> None:
        for attempt_id in list(self.polled):
            run = self.running[attempt_id]
            if not wrapper_alive(run.pid, run.status_path):
                self._finish(run, None)

    def _finish(self, run: Running, wait_status: int | None) -> None:
        record = self.spool.records[run.attempt_id]
        kill_reason = run.kill_reason or record.get("kill_reason")
        exit_code, signum, reason, stopped = _read_status(run.status_path)
        if reason in START_FAILURES:
            reason = START_FAILURES[reason]
            state = p.FAILED_TO_START
        else:
            state = p.EXITED
            if exit_code is None and signum is None:
                exit_code, signum, reason = _fallback_status(wait_status, run.signal_sent)
        oom = False
        if run.slot is not None:  # back to the pool, or drained first
            oom = self.slots.finish(run.slot, signum, now_ms())
            self._arm_slots_timer()
        if state == p.EXITED and reason is None:
            if kill_reason is not None:
                reason = kill_reason
            elif exit_code != 0 and oom:
                reason = OOM_REASON  # a job that succeeded was not killed for its memory
        result = p.attempt_update(
            run.attempt_id,
            state,
            record["log_path"],
            pid=run.pid,
            started_at_ms=record.get("started_at_ms"),
            stopped_at_ms=now_ms() if run.child or stopped is None else stopped,
            exit_code=exit_code,
            signal=signum,
            reason=reason,
        )
        self._untrack(run)
        self.spool.record_end(result)
        self.emit(result)

    # --- cgroup upkeep ---------------------------------------------------------------------

    def _arm_slots_timer(self) -> None:
        """One timer serves the pool's retries and idle trimming, armed for its next need."""
        due = self.slots.due_ms()
        if due is not None and (self._slots_due is None or due < self._slots_due):
            self._slots_due = due
            self._schedule(due, "slots", "")

    def sweep_stale_cgroups(self) -> None:
        """Kill and remove this node's cgroups that no live attempt owns (after recover)."""
        self.slots.sweep_stale(now_ms())
        self._arm_slots_timer()

    def close(self, wait_s: float = 2.0) -> None:
        """At agent exit: remove the slots of finished attempts. Running attempts keep
        theirs: their jobs live on."""
        self.slots.close(wait_s)

    # --- acks -------------------------------------------------------------------------------

    def ack(self, attempt_ids: Iterable[str]) -> None:
        """Forget acknowledged results (logs stay). Running attempts cannot be acked."""
        for attempt_id in attempt_ids:
            record = self.spool.records.get(attempt_id)
            if record is None or record.get("result") is None:
                continue
            if record.get("status_path"):
                _unlink_quietly(record["status_path"])
            if record.get("work_dir"):
                with contextlib.suppress(OSError):  # rmdir only succeeds when left empty
                    os.rmdir(record["work_dir"])
            self.spool.record_ack(attempt_id)

    # --- recovery after an agent restart ----------------------------------------------------

    def recover(self) -> None:
        """Re-adopt wrappers that outlived the previous agent and collect results of
        attempts that finished while no agent ran."""
        wrappers = find_wrappers(self.status_dir)
        for attempt_id, record in list(self.spool.records.items()):
            if record.get("result") is not None:
                continue
            if "status_path" not in record:  # a start record lost to a torn tail
                continue
            pid = wrappers.pop(record["status_path"], None)
            slot = self.slots.adopt(record.get("cgroups") or [], record.get("oom_base") or 0)
            run = Running(attempt_id, pid or record["pid"], record["status_path"], False, slot)
            self._track(run, record)
            if pid is not None:
                self._watch(run)
            else:
                self._finish(run, None)
        self._recover_unjournaled(wrappers)

    def _recover_unjournaled(self, wrappers: dict[str, int]) -> None:
        # The agent died between spawning and journaling: wrappers (running or finished)
        # exist with no start record. Their ids come back from the reversible file names.
        finished = {str(self.status_dir / name) for name in os.listdir(self.status_dir)}
        for status_path in sorted(set(wrappers) | finished):
            attempt_id = attempt_id_from_name(os.path.basename(status_path))
            if attempt_id is None or attempt_id in self.spool.records:
                continue
            pid = wrappers.get(status_path, 0)
            # A finished one's slot is unknown: the stale sweep removes it.
            cgroups = wrapper_cgroups(pid) if pid else []
            record = {
                "attempt_id": attempt_id,
                "pid": pid,
                "started_at_ms": None,
                "timeout_s": None,
                "log_path": self.log_path(attempt_id),
                "status_path": status_path,
                "work_dir": None,
                "cgroups": cgroups,
                "oom_base": 0,  # unknown: an OOM of an earlier attempt in the slot would count
            }
            self.spool.record_start(record)
            run = Running(attempt_id, pid, status_path, False, self.slots.adopt(cgroups, 0))
            self._track(run, record)
            if pid:
                self._watch(run)
            else:
                self._finish(run, None)

    def _watch(self, run: Running) -> None:
        try:
            run.pidfd = os.pidfd_open(run.pid)
        except (AttributeError, OSError):
            self.polled.add(run.attempt_id)
            if not wrapper_alive(run.pid, run.status_path):
                self._finish(run, None)
            return
        self.selector.register(run.pidfd, selectors.EVENT_READ, ("pidfd", run))


def _resolve_problem(program: str, cwd: str, path: str) -> str | None:
    """Why ``program`` cannot be executed, or None. Mirrors execvp's PATH search."""
    if "/" in program:
        candidates = [os.path.join(cwd, program)]
    else:
        candidates = [os.path.join(cwd, d or ".", program) for d in path.split(":")]
    seen_unexecutable = False
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return None
            seen_unexecutable = True
    if seen_unexecutable:
        return f"CannotStartContainerError: command not executable: {program}"
    return f"CannotStartContainerError: command not found: {program}"


def _read_status(path: str) -> tuple[int | None, int | None, str | None, int | None]:
    """(exit_code, signal, marker, mtime_ms) from a wrapper's status file."""
    try:
        with open(path, "rb") as status_file:
            text = status_file.read(64).decode("ascii", "replace")
            mtime_ms = os.fstat(status_file.fileno()).st_mtime_ns // 1_000_000
    except OSError:
        return None, None, None, None
    if text.strip() in START_FAILURES and text.endswith("\n"):
        return None, None, text.strip(), mtime_ms
    words = text.split()
    if len(words) == 2 and words[0] == "exit" and words[1].isdigit() and text.endswith("\n"):
        exit_code, signum = split_shell_status(int(words[1]))
        return exit_code, signum, None, mtime_ms
    return None, None, None, mtime_ms


def _fallback_status(
    wait_status: int | None, signal_sent: int | None
) -> tuple[int | None, int | None, str | None]:
    """The result when the wrapper left no status: it was killed itself."""
    if wait_status is not None:
        if os.WIFSIGNALED(wait_status):
            return None, os.WTERMSIG(wait_status), None
        return os.waitstatus_to_exitcode(wait_status), None, None
    if signal_sent is not None:
        return None, signal_sent, None
    return None, None, LOST_REASON


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
