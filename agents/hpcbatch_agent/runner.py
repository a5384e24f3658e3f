"""Starting, killing, reaping and re-adopting job processes.

Vocabulary:
    job        the attempt's first process, started by the agent itself (spawn.py: no
               shell, no extra process per job) in a new session, so its process group
               holds the whole job tree. Its environment names the attempt and this
               agent's state dir (jobs.py), and it starts in its working directory and,
               where cgroups enforce limits, inside its slot (slots.py): on v1 the agent's
               own thread steps into the slot around the spawn (``tasks`` moves one
               thread, cheaply), so the job never runs outside it; on v2 the job's fork
               child joins the slot with ``cgroup.procs`` before it execs the command
               (forkexec.py), as it switches to the job's user: no process running as
               root ever sees the job's environment.
    keeper     the agent's parent (keeper.py). The agent is a child subreaper, so what
               jobs orphan comes back to it; if the agent itself dies, its jobs go to the
               keeper, which records how each one ends in a reaped file. So a job that
               finishes while no agent runs still leaves its true exit status behind.
    running    an attempt whose job is alive: a child of this agent (reaped through SIGCHLD
               + waitid, with its true wait status) or, after an agent restart, adopted
               (watched via a pidfd; its end is read from the keeper's reaped file).
    result     the final update (EXITED / FAILED_TO_START); decided once, journaled in the
               spool before it is reported, never changed afterwards.
    prepared   what is decided and made before a job's spawn (jobprep.py; a gang node's
               launch dir and variables: gangprep.py, which also makes an adopted gang
               node's job reachable by launches again after a restart).

A job killed by signal N is reported as ``signal`` N (exit_code null); one that exits with
any code, 130 included, is reported with that code.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import protocol as p
from .agentlog import log
from .bootstrap import package_root
from .cgroups import OOM_REASON, Cgroups
from .cpumeter import CpuMeter
from .forkexec import LOG_FLAGS, LOG_MODE
from .gangprep import GANG, GangAttempt, journal_entry, readopt
from .jobprep import JobPrep, Ready, Refused
from .jobs import adoptable, find_jobs, job_alive, scan_claims
from .keeper import REAPED, read_reaped, reaped_path, start_ticks, wait_status
from .launchclient import client_command
from .launchdir import launch_dir, remove_launch_dir
from .slots import Slot, SlotPool
from .spawn import spawn_jobs
from .spool import Spool, safe_name
from .workdirs import WorkDirs

__all__ = ["Runner", "Running", "find_jobs"]

LOST_REASON = "lost: the job ended while no agent watched it, and no exit status was kept"
INTERRUPTED_START_REASON = (
    "lost: the agent stopped while starting the job; whether it ran, and how it ended, is unknown"
)
ADOPTED_POLL_S = 0.5
REAPED_RETRY_MS = 20  # an adopted job has ended but is not reaped yet: look again soon
REAPED_WAIT_MS = 10_000  # a zombie nobody reaps for this long: its status is taken as lost


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def split_wait_status(status: int) -> tuple[int | None, int | None]:
    """(exit_code, signal) from a wait status."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status), None


@dataclass
class Running:
    attempt_id: str
    pid: int
    ticks: int | None  # the job's start time (keeper.start_ticks): with pid, its identity
    child: bool  # False once adopted by a restarted agent: its end is in a reaped file
    slot: Slot | None  # the attempt's cgroups (None: unenforced)
    kill_reason: str | None = None
    signal_sent: int | None = None
    pidfd: int | None = None
    ended_ms: int | None = None  # adopted: when its end was first noticed


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
        host: str | None = None,
    ) -> None:
        self.spool = spool
        self.cgroups = cgroups or Cgroups.disabled()
        self.slots = SlotPool(self.cgroups)
        self.cpu = CpuMeter(self.slots)  # the CPU time of this agent's jobs (heartbeats)
        self.selector = selector
        self.emit = emit
        self.kill_grace_ms = int(kill_grace_s * 1000)
        self.state_dir = state_dir
        self.logs_dir = state_dir / "logs"
        self.work_dir = state_dir / "work"
        for directory in (self.logs_dir, self.work_dir, state_dir / REAPED):
            directory.mkdir(parents=True, exist_ok=True)
        # Plain strings for the per-launch hot path (pathlib costs ~10 us per join).
        self._state = str(state_dir)
        self._logs = str(self.logs_dir)
        self._work = str(self.work_dir)
        self.workdirs = WorkDirs(self._work)
        self.prep = JobPrep(self._state, self._logs, self._work, self.slots, self.workdirs, host)
        self.running: dict[str, Running] = {}
        self.by_pid: dict[int, Running] = {}
        self.polled: set[str] = set()  # adopted without a pidfd (old kernels)
        self._timers: list[tuple[int, int, str, str]] = []  # (due_ms, seq, kind, attempt_id)
        self._seq = 0
        self._slots_due: int | None = None  # when the pending "slots" timer fires
        self._reaped_done: dict[str, int] = {}  # attempt -> pid whose reaped file was used
        self.gangs: dict[str, GangAttempt] = {}  # running gang nodes' jobs, by attempt id
        self.launcher = client_command(sys.executable, package_root())  # the launch client
        self.on_other_child: Callable[[int, int], None] | None = None  # a launched command

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
            started_at_ms=record.get("started_at_ms"),
        )

    def all_updates(self) -> list[p.AttemptUpdate]:
        found = (self.current_update(aid) for aid in list(self.spool.records))
        return [update for update in found if update is not None]

    # --- launching --------------------------------------------------------------------------

    def launch_batch(self, specs: Iterable[p.AttemptSpec]) -> None:
        """Start a batch in three steps: prepare each job (work dir, slot, environment),
        journal every intent in one write, spawn them back to back (spawn.spawn_jobs), then
        journal every start in one write and track them."""
        self.prep.new_batch()  # PATH lookups, users and their groups: once per batch
        ready: list[Ready] = []
        taken: set[str] = set()
        for spec in specs:
            prepared = self._prepare(spec, taken)
            if prepared is not None:
                ready.append(prepared)
                taken.add(prepared.attempt_id)
        if not ready:
            return
        for job in ready:
            user = job.request.user  # the uid its job will run as, for a later adoption
            uid = user.uid if user is not None else None
            self.spool.record_intent(job.attempt_id, job.request.log_path, job.work_dir, uid)
        self.spool.flush()
        spawned = spawn_jobs([job.request for job in ready], self.cgroups, self._state)
        started: list[tuple[Ready, int, int]] = []
        for job, outcome in zip(ready, spawned, strict=True):
            if isinstance(outcome, str):
                slot = job.request.slot
                if slot is not None:
                    self.slots.finish(slot, None, now_ms())
                reason = f"CannotStartContainerError: {outcome}"
                self.fail_to_start(job.attempt_id, job.request.log_path, reason)
            else:
                started.append((job, *outcome))
        for job, pid, started_ms in started:
            slot = job.request.slot
            record: dict[str, Any] = {
                "attempt_id": job.attempt_id,
                "pid": pid,
                "start_ticks": start_ticks(pid),
                "started_at_ms": started_ms,
                "timeout_s": job.timeout_s,
                "log_path": job.request.log_path,
                "work_dir": job.work_dir,
                "cgroups": slot.dirs if slot is not None else [],
                "oom_base": slot.oom_base if slot is not None else 0,
            }
            if job.launch_key is not None:
                record[GANG] = journal_entry(job.request)
                self.gangs[job.attempt_id] = GangAttempt(bytes.fromhex(job.launch_key), job.request)
            self.spool.record_start(record)
            self._track(Running(job.attempt_id, pid, record["start_ticks"], True, slot), record)
            update = p.attempt_update(
                job.attempt_id,
                p.RUNNING,
                job.request.log_path,
                pid=pid,
                started_at_ms=record["started_at_ms"],
            )
            self.emit(update)
        self.spool.flush()

    def _prepare(self, spec: p.AttemptSpec, taken: set[str]) -> Ready | None:
        """A job ready to spawn, or None: already known (reported again), or failed to start
        (reported)."""
        attempt_id = spec["attempt_id"]
        known = self.current_update(attempt_id)
        if known is not None:  # a re-sent launch: report, never run twice
            self.emit(known)
            return None
        if attempt_id in taken:
            return None  # twice in one batch: one start
        prepared = self.prep.prepare(spec, self.launcher)
        if isinstance(prepared, Refused):
            self.fail_to_start(attempt_id, prepared.log_path, prepared.reason)
            return None
        return prepared

    def fail_to_start(self, attempt_id: str, log_path: str, reason: str) -> None:
        """Report the attempt FAILED_TO_START; the reason also goes to its log, unless a
        symlink stands in the log's place (never followed)."""
        try:
            with open(os.open(log_path, LOG_FLAGS, LOG_MODE), "a", encoding="utf-8") as out:
                out.write(reason + "\n")
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
        if not self.cpu.cgroup_counted(run.slot):
            self.cpu.watch(run.attempt_id, run.pid, run.ticks, run.child)
        if record.get("timeout_s") is not None and record.get("started_at_ms") is not None:
            due = record["started_at_ms"] + int(record["timeout_s"]) * 1000
            self._schedule(due, "timeout", run.attempt_id)

    def _untrack(self, run: Running) -> None:
        self.running.pop(run.attempt_id, None)
        self.by_pid.pop(run.pid, None)
        self.polled.discard(run.attempt_id)
        self.gangs.pop(run.attempt_id, None)
        self._close_pidfd(run)

    def _close_pidfd(self, run: Running) -> None:
        if run.pidfd is not None:
            self.selector.unregister(run.pidfd)
            os.close(run.pidfd)
            run.pidfd = None

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
        if run.ended_ms is None:  # an ended adopted job's pid may be reaped and reused
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
            elif kind == "escalate" and run.ended_ms is None:
                self._signal(run, signal.SIGKILL)
            elif kind == "reaped":
                self._finish_adopted(run)

    # --- noticing exits ---------------------------------------------------------------------

    def reap_children(self) -> None:
        """Collect every exited child. Stragglers the job left in its process group are
        killed while the job is still a zombie, so its pgid cannot have been reused."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            run = self.by_pid.get(info.si_pid)
            if run is not None and run.child:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(info.si_pid, signal.SIGKILL)
                self.spool.record_exited(run.attempt_id, wait_status(info), now_ms())
            _, status, usage = os.wait4(info.si_pid, 0)
            if run is not None and run.child:  # else: an orphan the agent inherited
                self.cpu.reaped(run.attempt_id, usage)
                exit_code, signum = split_wait_status(status)
                self._finish(run, exit_code, signum, None)
            elif run is None:
                self.cpu.orphan_reaped(usage)
                if self.on_other_child is not None:
                    self.on_other_child(info.si_pid, status)

    def on_pidfd(self, run: Running) -> None:
        self._close_pidfd(run)  # readable from now on: stop watching
        self._finish_adopted(run)

    def poll_adopted(self) -> None:
        for attempt_id in list(self.polled):
            run = self.running[attempt_id]
            if run.ended_ms is None and not job_alive(run.pid, run.ticks):
                self.polled.discard(attempt_id)
                self._finish_adopted(run)

    def _finish_adopted(self, run: Running) -> None:
        """An adopted job has ended (or is about to be reaped by the keeper): its result is
        in the keeper's reaped file. Retried briefly; without one in time, it is lost."""
        now = now_ms()
        if run.ended_ms is None:
            run.ended_ms = now
        # Alive first: the keeper writes the file before it reaps, so once the job is gone
        # a missing file means nobody kept its status.
        unreaped = job_alive(run.pid, run.ticks)
        found = read_reaped(self._state, run.pid, run.ticks)
        if found is not None:
            status, stopped_ms = found
            self._reaped_done[run.attempt_id] = run.pid
            exit_code, signum = split_wait_status(status)
            self._finish(run, exit_code, signum, None, stopped_ms)
        elif unreaped and now - run.ended_ms < REAPED_WAIT_MS:
            self._schedule(now + REAPED_RETRY_MS, "reaped", run.attempt_id)
        else:
            self._finish(run, None, run.signal_sent, None if run.signal_sent else LOST_REASON)

    def _finish(
        self,
        run: Running,
        exit_code: int | None,
        signum: int | None,
        reason: str | None,
        stopped_ms: int | None = None,
    ) -> None:
        record = self.spool.records[run.attempt_id]
        kill_reason = run.kill_reason or record.get("kill_reason")
        oom = False
        counted_ns = self.slots.cpu_done_ns
        if run.slot is not None:  # back to the pool, or drained first
            oom = self.slots.finish(run.slot, signum, now_ms())
            self._arm_slots_timer()
        cpu_ns = self.cpu.ended(run.attempt_id)  # a job without a cgroup counter
        if cpu_ns is None:
            cpu_ns = self.slots.cpu_done_ns - counted_ns  # what its slot counted
        if reason is None:
            if kill_reason is not None:
                reason = kill_reason
            elif exit_code != 0 and oom:
                reason = OOM_REASON  # a job that succeeded was not killed for its memory
        result = p.attempt_update(
            run.attempt_id,
            p.EXITED,
            record["log_path"],
            pid=run.pid,
            started_at_ms=record.get("started_at_ms"),
            stopped_at_ms=stopped_ms if stopped_ms is not None else now_ms(),
            exit_code=exit_code,
            signal=signum,
            reason=reason,
            # Only for jobs the agent saw whole: an adopted one counts from its adoption.
            cpu_s=round(cpu_ns / 1e9, 6) if run.child else None,
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
            if record.get("work_dir"):
                self.workdirs.release(record["work_dir"])
            remove_launch_dir(launch_dir(self._state, attempt_id))
            pid = self._reaped_done.pop(attempt_id, None)
            if pid is not None:
                _unlink_quietly(reaped_path(self._state, pid))
            self.spool.record_ack(attempt_id)

    # --- recovery after an agent restart ----------------------------------------------------

    def recover(self) -> None:
        """Re-adopt jobs that outlived the previous agent and collect the results of those
        that ended while no agent ran (from the keeper's reaped files). A job spawned but
        never journaled as started is found by its environment, and adopted only if its
        intent was journaled and it runs as the uid the intent names (jobs.adoptable)."""
        intents: dict[str, dict[str, Any]] = {}
        settled: set[str] = set()  # their processes are known by pid: claims are no news
        for attempt_id, record in list(self.spool.records.items()):
            if record.get("result") is not None or "pid" not in record:
                settled.add(attempt_id)
                continue  # finished, or only an end survived a torn start
            if record["pid"] is None:  # the agent died while spawning it
                intents[attempt_id] = record  # settled below, once every live job is known
                continue
            settled.add(attempt_id)
            slot = self.slots.adopt(record.get("cgroups") or [], record.get("oom_base") or 0)
            run = Running(attempt_id, record["pid"], record.get("start_ticks"), False, slot)
            self._track(run, record)
            exited = record.get("exited")
            if exited:  # reaped by the previous agent, which died before journaling the end
                exit_code, signum = split_wait_status(int(exited[0]))
                self._finish(run, exit_code, signum, None, exited[1])
            else:
                self._adopt(run)
                self._readopt_gang(run, record)
        own_uid = os.geteuid()
        expected = {
            aid: rec["uid"] if isinstance(rec.get("uid"), int) else own_uid
            for aid, rec in intents.items()
        }
        claims = [c for c in scan_claims(self._state) if c.attempt_id not in settled]
        live, refused = adoptable(claims, expected)
        for claim, why in refused:
            log(
                f"not adopting process {claim.pid} (uid {claim.uid}) that claims attempt "
                f"{claim.attempt_id!r}: {why}"
            )
        for attempt_id, pid in sorted(live.items()):
            self._adopt_unjournaled(attempt_id, pid)
        for attempt_id, record in intents.items():
            if attempt_id not in live:
                self._settle_interrupted_start(record)

    def _readopt_gang(self, run: Running, record: dict[str, Any]) -> None:
        if GANG in record and run.attempt_id in self.running:  # alive: serve its launches
            gang = readopt(self._state, run.attempt_id, record, run.slot)
            if gang is not None:
                self.gangs[run.attempt_id] = gang

    def _settle_interrupted_start(self, record: dict[str, Any]) -> None:
        """An attempt whose spawn the previous agent began but never journaled, and whose job
        is not running now. The child opens the attempt's log as its first act, so without a
        log it never existed: forget the attempt (a re-sent launch runs it, once). With one it
        may have run and ended unseen: it is lost, never started again."""
        attempt_id = record["attempt_id"]
        if not os.path.exists(record["log_path"]):
            if record.get("work_dir"):
                self.workdirs.release(record["work_dir"])
            self.spool.record_ack(attempt_id)
            return
        result = p.attempt_update(
            attempt_id,
            p.EXITED,
            record["log_path"],
            stopped_at_ms=now_ms(),
            reason=INTERRUPTED_START_REASON,
        )
        self.spool.record_end(result)
        self.emit(result)

    def _adopt_unjournaled(self, attempt_id: str, pid: int) -> None:
        # The agent died while spawning a job (its intent may be journaled, its start is
        # not): the job's environment names its attempt. Its slot is unknown: the stale
        # sweep removes it.
        ticks = start_ticks(pid)
        prior: dict[str, Any] = self.spool.records.get(attempt_id) or {}
        record: dict[str, Any] = {
            "attempt_id": attempt_id,
            "pid": pid,
            "start_ticks": ticks,
            "started_at_ms": None,
            "timeout_s": None,
            "log_path": self.log_path(attempt_id),
            "work_dir": prior.get("work_dir"),
            "cgroups": [],
            "oom_base": 0,
        }
        self.spool.record_start(record)
        run = Running(attempt_id, pid, ticks, False, self.slots.adopt([], 0))
        self._track(run, record)
        self._adopt(run)

    def _adopt(self, run: Running) -> None:
        if not job_alive(run.pid, run.ticks):
            self._finish_adopted(run)
            return
        try:
            run.pidfd = os.pidfd_open(run.pid)
        except (AttributeError, OSError):
            self.polled.add(run.attempt_id)
            return
        if not job_alive(run.pid, run.ticks):  # the pid was reused before the pidfd
            self._close_pidfd(run)
            self._finish_adopted(run)
            return
        self.selector.register(run.pidfd, selectors.EVENT_READ, ("pidfd", run))

    def remove_stale_reaped(self) -> None:
        """After recovery is committed: remove reaped files no adopted job still needs."""
        needed = {str(run.pid) for run in self.running.values() if not run.child}
        directory = f"{self._state}/{REAPED}"
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                if name not in needed:
                    _unlink_quietly(f"{directory}/{name}")
        self._reaped_done.clear()


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
