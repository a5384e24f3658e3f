"""A pool of cgroups reused by one attempt after another.

Vocabulary:
    slot        ``<node dir>/s<N>`` in each hierarchy (see cgroups.py), made once and handed
                to one attempt at a time. Making and removing a cgroup per attempt (a mkdir
                and a rmdir per hierarchy, memcg setup and teardown in the kernel) cost about
                a fifth of the agent's launch throughput; a reused slot costs a few reads.
    free        empty and waiting; the most recently freed is handed out first, so the
                rest stay idle and one idle for SLOT_IDLE_MS is removed.
    busy        handed to an attempt, or re-adopted with its running job after an agent
                restart (then its limits are unknown, and it is removed once its job ends).
    draining    its attempt has ended but processes remain (they left the process group):
                they get SIGKILL every CGROUP_RETRY_MS until the slot is empty, and it is
                freed; one still busy after CGROUP_RETRY_FOR_MS is given up on.
    doomed      dirs to rmdir: stale ones of a previous agent, idle or given-up slots. rmdir
                only succeeds once a dir is empty, so they are retried like draining slots.
    held        what each limit file of a slot holds: only the values that differ from
                the next attempt's are written.
    oom base    the slot's cumulative ``oom_kill`` count when handed out: the attempt was
                OOM-killed only if the count grew, whatever earlier attempts suffered.
    cpu base    likewise the slot's CPU counter (cgroups.cpu_usage_ns) when handed out, read
                when the slot was last found empty (0 for a new one; a re-adopted slot's at
                adoption): what the counter gained since is the attempt's CPU time.
    cpu done    the CPU time (ns) of attempts whose slots were taken back, stragglers
                included: with the busy slots' gains (``cpu_busy_ns``), cpumeter.py's total.
Standard library only.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass

from .cgroups import Cgroups

SLOT_IDLE_MS = 60_000
FREE_MAX = 1024  # free slots kept; more are removed as they are released
CGROUP_RETRY_MS = 20
CGROUP_RETRY_FOR_MS = 10_000


@dataclass
class Slot:
    name: str
    dirs: list[str]  # one per hierarchy
    enter: list[str]  # v1: the files the agent's thread writes itself into around a spawn
    joins: list[str]  # v2: the files the job's first process writes itself into
    held: list[dict[str, str]] | None  # per hierarchy; None: unknown (re-adopted)
    shape: tuple[int, int] | None = None  # (vcpus, memory_mib) whose limits it holds
    oom_base: int = 0
    cpu_base: int = 0
    cpu_seen: int = 0  # the counter's last value read (kept if a read fails)
    idle_since_ms: int = 0
    give_up_ms: int = 0


class SlotPool:
    """The slots of one agent. With cgroups inactive it hands out nothing."""

    def __init__(self, cgroups: Cgroups) -> None:
        self.cgroups = cgroups
        self.free: deque[Slot] = deque()
        self.busy: dict[str, Slot] = {}
        self.draining: dict[str, Slot] = {}
        self.doomed: dict[str, int] = {}  # dir -> give-up time (ms)
        self.cpu_done_ns = 0
        self._next_index = 0

    @property
    def active(self) -> bool:
        return self.cgroups.active

    def all_dirs(self) -> set[str]:
        slots = [*self.free, *self.busy.values(), *self.draining.values()]
        return {d for slot in slots for d in slot.dirs}

    # --- handing out and taking back ----------------------------------------------------------

    def acquire(self, vcpus: int, memory_mib: int) -> Slot:
        """A slot holding these limits. OSError if none can be made."""
        shape = (vcpus, memory_mib)
        while self.free:
            slot = self.free.pop()
            if slot.shape == shape:
                break
            try:
                self._set_limits(slot, shape)
                break
            except OSError:  # e.g. a cut below memory the kernel cannot reclaim
                self._doom(slot.dirs, _now_ms())
        else:
            slot = self._make()
            try:
                self._set_limits(slot, shape)
            except OSError:
                self.cgroups.remove(slot.dirs)
                raise
        self.busy[slot.name] = slot
        return slot

    def adopt(self, dirs: list[str], oom_base: int) -> Slot:
        """The slot of a job that outlived the previous agent (or an attempt dir of an older
        agent): busy until its job ends, then removed, as its limits are not known."""
        name = os.path.basename(dirs[0]) if dirs else ""
        slot = Slot(name, dirs, [], [], None, None, oom_base)
        slot.cpu_base = slot.cpu_seen = self.cgroups.cpu_usage_ns(dirs) or 0
        if dirs:
            self.busy[name] = slot
        return slot

    def finish(self, slot: Slot, signum: int | None, now_ms: int) -> bool:
        """Take back the slot of an ended attempt; whether the OOM killer struck in it.

        Emptiness is checked before the counter is read, so that no process of this attempt
        can still add to the count the next attempt starts from."""
        self.busy.pop(slot.name, None)
        if not slot.dirs:
            return False
        if len(slot.dirs) != len(self.cgroups.plan):  # a previous agent's other hierarchies
            self.cgroups.kill_each(slot.dirs)
            self._doom(slot.dirs, now_ms)
            return False
        empty = self.cgroups.is_empty(slot.dirs)
        self._account(slot)
        count = self.cgroups.oom_count(slot.dirs)
        oom = self.cgroups.oom_killed(count, slot.oom_base, signum)
        if empty:
            self._release(slot, count, now_ms)
        else:
            self.cgroups.kill_each(slot.dirs)  # stragglers that left the process group
            slot.give_up_ms = now_ms + CGROUP_RETRY_FOR_MS
            self.draining[slot.name] = slot
        return oom

    def cpu_busy_ns(self) -> int:
        """The CPU time the busy slots' attempts have used so far: one kept-file read each."""
        total = 0
        for slot in self.busy.values():
            now = self.cgroups.cpu_usage_ns(slot.dirs)
            if now is not None and now > slot.cpu_seen:
                slot.cpu_seen = now
            total += slot.cpu_seen - slot.cpu_base
        return total

    def _account(self, slot: Slot) -> None:
        """Move what the slot's counter gained since its base into ``cpu_done_ns``, and make
        the counter's value its base."""
        now = self.cgroups.cpu_usage_ns(slot.dirs)
        now = slot.cpu_seen if now is None else max(now, slot.cpu_seen)
        self.cpu_done_ns += max(0, now - slot.cpu_base)
        slot.cpu_base = slot.cpu_seen = now

    def _release(self, slot: Slot, count: int | None, now_ms: int) -> None:
        if slot.held is None or len(self.free) >= FREE_MAX:
            self._doom(slot.dirs, now_ms)
            return
        self.cgroups.reset_oom_fallback(slot.dirs)
        slot.oom_base = count if count is not None and self.cgroups.has_oom_counter else 0
        slot.idle_since_ms = now_ms
        self.free.append(slot)

    # --- upkeep: draining, removal, idle trimming ---------------------------------------------

    def sweep_stale(self, now_ms: int) -> None:
        """Kill and remove whatever of this node's dirs is no slot of this pool."""
        stale = self.cgroups.stale(self.all_dirs())
        if stale:
            self.cgroups.kill_each(stale)
            self._doom(stale, now_ms)

    def due_ms(self) -> int | None:
        """When ``tick`` has work next, or None."""
        if self.draining or self.doomed:
            return _now_ms() + CGROUP_RETRY_MS
        if self.free:
            return self.free[0].idle_since_ms + SLOT_IDLE_MS
        return None

    def tick(self, now_ms: int) -> None:
        for slot in list(self.draining.values()):
            self._account(slot)  # what its stragglers used
            if self.cgroups.is_empty(slot.dirs):
                del self.draining[slot.name]
                self._release(slot, self.cgroups.oom_count(slot.dirs), now_ms)
            elif slot.give_up_ms <= now_ms:
                del self.draining[slot.name]  # never handed out again
            else:
                self.cgroups.kill_each(slot.dirs)  # they may have forked meanwhile
        if self.doomed:
            still = set(self.cgroups.remove(self.doomed))
            self.doomed = {d: t for d, t in self.doomed.items() if d in still and t > now_ms}
        while self.free and self.free[0].idle_since_ms + SLOT_IDLE_MS <= now_ms:
            self.cgroups.remove(self.free.popleft().dirs)

    def close(self, wait_s: float) -> None:
        """At agent exit: remove every slot but the busy ones (their jobs live on), waiting
        briefly for the last killed processes to go, then the node dirs once empty."""
        deadline = time.monotonic() + wait_s
        leftover = [d for slot in [*self.free, *self.draining.values()] for d in slot.dirs]
        leftover += list(self.doomed)
        self.free.clear()
        self.draining.clear()
        self.doomed.clear()
        while leftover:
            leftover = self.cgroups.remove(leftover)
            if not leftover or time.monotonic() > deadline:
                break
            time.sleep(0.01)  # stragglers already got SIGKILL; their exit takes a moment
        self.cgroups.remove_node_dirs()  # only succeeds once no slot is left

    # --- internals ------------------------------------------------------------------------------

    def _make(self) -> Slot:
        """A new empty slot, named past any dir that is still there (a stale one, a
        re-adopted job's)."""
        while True:
            name = f"s{self._next_index}"
            self._next_index += 1
            if name in self.busy:
                continue
            dirs = self.cgroups.child_dirs(name)
            made: list[str] = []
            try:
                for directory in dirs:
                    os.mkdir(directory)
                    made.append(directory)
            except FileExistsError:
                self.cgroups.remove(made)
                continue
            except OSError:
                self.cgroups.remove(made)
                raise
            held = [dict(writes) for writes in self.cgroups.unlimited()]
            enter, joins = self.cgroups.join_files(dirs)
            return Slot(name, dirs, enter, joins, held, (0, 0))

    def _set_limits(self, slot: Slot, shape: tuple[int, int]) -> None:
        assert slot.held is not None  # only pooled slots are reused
        slot.shape = None  # unknown until every write has landed
        self.cgroups.write_limits(slot.dirs, self.cgroups.limits(*shape), slot.held)
        slot.shape = shape

    def _doom(self, dirs: list[str], now_ms: int) -> None:
        busy = self.cgroups.remove(dirs)
        for directory in busy:
            self.doomed.setdefault(directory, now_ms + CGROUP_RETRY_FOR_MS)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
