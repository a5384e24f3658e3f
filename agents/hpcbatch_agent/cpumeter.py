"""The CPU time this agent's jobs have used since it started: the heartbeat's ``cpu_s``.

Vocabulary:
    cgroup-counted  a job in a slot whose hierarchy has a CPU counter (cgroups.py): the slot
                    pool sums, per attempt, what the counter gained since the attempt's base
                    (slots.py). Exact: every process of the job is in the slot, dead or not.
    proc-counted    a job without such a slot (``--no-cgroups``, a host with no counter, a job
                    re-adopted without its slot), counted from /proc instead: while it runs,
                    its first process's utime+stime+cutime+cstime (``/proc/<pid>/stat``: the
                    process itself and the descendants it has waited for); when the agent
                    reaps it, wait4's rusage (the same sum, final). A job's orphans (the agent
                    is a child subreaper, so they become its children) add their rusage when
                    the agent reaps them.
    approximation   (proc-counted only) descendants still running, or ended but not yet
                    waited for, count once they are reaped, so the total can lag behind and
                    then catch up; a job re-adopted after an agent restart counts from its
                    adoption until the last heartbeat that saw it alive (the keeper, not the
                    agent, reaps it). Time before the agent started never counts.
    total           cgroup-counted + proc-counted, in seconds; never decreases (a counter
                    that cannot be read keeps its last value).
    attempt's own   what one attempt used, for its final update's ``cpu_s``: its slot's gain
                    at its end (runner.py reads the pool's ``cpu_done_ns`` around
                    ``SlotPool.finish``), or its proc count (``ended``).

Reading the total costs one kept-file read per cgroup-counted running attempt and one
/proc/<pid>/stat read per proc-counted one: it is read once per heartbeat. Standard library
only.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from .procfs import stat_fields
from .slots import Slot, SlotPool

NS = 1_000_000_000
# Fields of stat_fields(): utime, stime, cutime, cstime (clock ticks), the start time.
UTIME, STIME, CUTIME, CSTIME, START = 11, 12, 13, 14, 19


def rusage_ns(usage: resource.struct_rusage) -> int:
    """User + system CPU time of a reaped child (and the descendants it waited for), ns."""
    return round((usage.ru_utime + usage.ru_stime) * NS)


def stat_cpu_ticks(fields: list[bytes], start_ticks: int | None) -> int | None:
    """utime+stime+cutime+cstime of a /proc/<pid>/stat (its fields after the command), in
    clock ticks; None if they are not numbers, or the process is not the one that started
    at ``start_ticks`` (its pid was reused)."""
    if len(fields) <= START:
        return None
    if start_ticks is not None and fields[START] != str(start_ticks).encode():
        return None
    try:
        return sum(int(fields[i]) for i in (UTIME, STIME, CUTIME, CSTIME))
    except ValueError:
        return None


@dataclass
class ProcCount:
    pid: int
    start_ticks: int | None
    base_ns: int  # what the job had used before this agent counted it
    seen_ns: int  # its last value read
    final: bool = False  # reaped: seen_ns is its rusage, and its pid may be reused


class CpuMeter:
    def __init__(self, slots: SlotPool) -> None:
        self.slots = slots
        self.done_ns = 0  # proc-counted: ended jobs and reaped orphans
        self.watched: dict[str, ProcCount] = {}  # running proc-counted jobs, by attempt id
        self._tick_ns = NS // os.sysconf("SC_CLK_TCK")
        self._last_s = 0.0

    def cgroup_counted(self, slot: Slot | None) -> bool:
        cgroups = self.slots.cgroups
        return (
            slot is not None
            and cgroups.cpu_counter is not None
            and len(slot.dirs) == len(cgroups.plan)
        )

    def watch(self, attempt_id: str, pid: int, start_ticks: int | None, child: bool) -> None:
        """Count a job that is not cgroup-counted: a child of this agent from its start, an
        adopted job from now on."""
        count = ProcCount(pid, start_ticks, 0, 0)
        if not child:
            count.base_ns = count.seen_ns = self._read(count) or 0
        self.watched[attempt_id] = count

    def reaped(self, attempt_id: str, usage: resource.struct_rusage) -> None:
        """The agent reaped a job's first process: its rusage is its final count."""
        count = self.watched.get(attempt_id)
        if count is not None:
            count.seen_ns = max(rusage_ns(usage), count.seen_ns)
            count.final = True

    def orphan_reaped(self, usage: resource.struct_rusage) -> None:
        """The agent reaped a process of no attempt: a job's orphan. Counted only where no
        cgroup counter counts jobs (there it was counted in its slot)."""
        if self.slots.cgroups.cpu_counter is None:
            self.done_ns += rusage_ns(usage)

    def ended(self, attempt_id: str) -> int | None:
        """A proc-counted job ended: what it used (ns), now part of ``done_ns``; None if it
        was cgroup-counted. A job the agent did not reap (adopted) keeps its last count."""
        count = self.watched.pop(attempt_id, None)
        if count is None:
            return None
        used = count.seen_ns - count.base_ns
        self.done_ns += used
        return used

    def seconds(self) -> float:
        """The total, in CPU seconds; reads every running attempt's counter once."""
        total = self.slots.cpu_done_ns + self.slots.cpu_busy_ns() + self.done_ns
        for count in self.watched.values():
            now = None if count.final else self._read(count)
            if now is not None and now > count.seen_ns:
                count.seen_ns = now
            total += count.seen_ns - count.base_ns
        self._last_s = max(self._last_s, round(total / NS, 6))
        return self._last_s

    def _read(self, count: ProcCount) -> int | None:
        fields = stat_fields(count.pid)
        ticks = stat_cpu_ticks(fields, count.start_ticks) if fields is not None else None
        return None if ticks is None else ticks * self._tick_ns
