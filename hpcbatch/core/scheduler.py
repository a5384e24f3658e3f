"""One scheduling pass: ``schedule(state, now) -> Plan``. It reads the state and never changes it.

Order: queues by ``priority`` (higher first, then age); in each queue, jobs by
``schedulingPriority`` (higher first) then submission order; each job tries its queue's compute
environments in ``computeEnvironmentOrder`` and, within one, the fitting node with the most free
vCPUs (spreading keeps agents busy in parallel).

Backfill is EASY backfill: the first job of each queue that cannot start gets a reservation on
the node where it could start soonest (from running jobs' timeouts; unknown ends count as never).
A later job may start ahead of it only where it cannot delay that reservation: it ends before the
reserved time, or it fits in what the reserved job leaves spare. Jobs that no node could ever hold
(MISCONFIGURATION) block nothing. The scan of a queue stops once nothing fits anywhere, or after
``backfill_depth`` blocked jobs, so a pass costs O(placed + depth), not O(queued).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcbatch.core.model import Job, JobQueue, Node, Resources
from hpcbatch.core.plan import Placement, Plan, Reservation
from hpcbatch.core.state import State

NEVER = None  # an unknown end time


@dataclass(slots=True)
class _Free:
    node: Node
    free: Resources
    gpus: list[int]
    ends: list[tuple[int | None, Resources]] = field(default_factory=list)


@dataclass(slots=True)
class _Hold:
    """A reservation being honoured during the pass: what the reserved job leaves spare."""

    reservation: Reservation
    spare: Resources


@dataclass(slots=True)
class _Pass:
    state: State
    now: int
    pool: dict[str, _Free]
    holds: dict[str, list[_Hold]] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)
    first_blocked: str | None = None


def _attempt_end(start: int | None, timeout_s: int | None, now: int) -> int | None:
    if timeout_s is None:
        return NEVER
    return (start if start is not None else now) + timeout_s * 1000


def _build_pool(state: State, now: int) -> dict[str, _Free]:
    pool: dict[str, _Free] = {}
    for node in state.nodes.values():
        ce = state.ces.get(node.ce)
        if not node.schedulable or ce is None or ce.state != "ENABLED":
            continue
        entry = _Free(node, node.free, sorted(node.free_gpus))
        for aid in node.attempts:
            job = state.jobs[aid.rpartition("/")[0]]
            attempt = job.attempts[-1]
            end = _attempt_end(attempt.started_at, job.spec.timeout_s, now)
            entry.ends.append((end, attempt.resources))
        pool[node.name] = entry
    return pool


def schedule(state: State, now: int, backfill_depth: int = 200) -> Plan:
    pool = _build_pool(state, now)
    if not pool:
        return Plan()
    run = _Pass(state, now, pool)
    for queue in sorted(state.queues.values(), key=lambda q: (-q.priority, q.seq)):
        if queue.state == "ENABLED" and state.runnable.get(queue.name):
            _schedule_queue(run, queue, backfill_depth)
    reservations = tuple(h.reservation for holds in run.holds.values() for h in holds)
    return Plan(tuple(run.placements), reservations)


def _queue_pool(run: _Pass, queue: JobQueue) -> list[list[_Free]]:
    by_ce: list[list[_Free]] = []
    for ce in queue.ce_order:
        members = [f for f in run.pool.values() if f.node.ce == ce]
        if members:
            by_ce.append(sorted(members, key=lambda f: f.node.name))
    return by_ce


def _schedule_queue(run: _Pass, queue: JobQueue, backfill_depth: int) -> None:
    tiers = _queue_pool(run, queue)
    if not tiers:
        return
    flat = [f for tier in tiers for f in tier]
    blocked_shapes: set[tuple[Resources, int | None]] = set()
    reserved = False
    blocked = 0
    for key in run.state.runnable[queue.name]:
        if not any(f.free.cpu_milli > 0 and f.free.memory_mib > 0 for f in flat):
            return
        job = run.state.jobs[key[3]]
        need = job.spec.resources
        shape = (need, job.spec.timeout_s)
        if shape not in blocked_shapes and _try_place(run, tiers, job):
            continue
        if not any(need.fits_in(f.node.capacity) for f in flat):
            continue  # MISCONFIGURATION: it blocks nobody (explain says why)
        blocked_shapes.add(shape)
        if run.first_blocked is None:
            run.first_blocked = job.job_id
        if not reserved:
            _reserve(run, flat, job)
            reserved = True
        blocked += 1
        if blocked >= backfill_depth:
            return


def _allowed(run: _Pass, entry: _Free, need: Resources, end: int | None) -> bool:
    for hold in run.holds.get(entry.node.name, ()):
        at = hold.reservation.at
        ends_first = end is not None and at is not None and end <= at
        if not ends_first and not need.fits_in(hold.spare):
            return False
    return True


def _try_place(run: _Pass, tiers: list[list[_Free]], job: Job) -> bool:
    need = job.spec.resources
    end = _attempt_end(None, job.spec.timeout_s, run.now)
    for tier in tiers:
        best: _Free | None = None
        for entry in tier:
            better = best is None or entry.free.cpu_milli > best.free.cpu_milli
            if better and need.fits_in(entry.free) and _allowed(run, entry, need, end):
                best = entry
        if best is not None:
            _commit(run, best, job, need, end)
            return True
    return False


def _commit(run: _Pass, entry: _Free, job: Job, need: Resources, end: int | None) -> None:
    gpus = tuple(entry.gpus[: need.gpus])
    del entry.gpus[: need.gpus]
    entry.free = entry.free - need
    entry.ends.append((end, need))
    for hold in run.holds.get(entry.node.name, ()):
        at = hold.reservation.at
        if not (end is not None and at is not None and end <= at):
            hold.spare = hold.spare - need
    ahead = run.first_blocked
    reason = "started immediately" if ahead is None else f"backfilled ahead of {ahead}"
    run.placements.append(Placement(job.job_id, entry.node.name, gpus, ahead is not None, reason))


def _free_at(entry: _Free, at: int | None) -> Resources:
    free = entry.free
    for end, held in entry.ends:
        if end is not None and (at is None or end <= at):
            free = free + held
    return free


def _reserve(run: _Pass, flat: list[_Free], job: Job) -> None:
    need = job.spec.resources
    best: tuple[int | None, _Free] | None = None
    for entry in flat:
        if not need.fits_in(entry.node.capacity):
            continue
        at = _earliest(entry, need, run.now)
        if best is None or _sooner(at, best[0]):
            best = (at, entry)
    if best is None:
        return
    at, entry = best
    spare = _free_at(entry, at) - need
    reservation = Reservation(job.job_id, entry.node.name, at, need)
    run.holds.setdefault(entry.node.name, []).append(_Hold(reservation, spare))


def _sooner(a: int | None, b: int | None) -> bool:
    return a is not None and (b is None or a < b)


def _earliest(entry: _Free, need: Resources, now: int) -> int | None:
    free = entry.free
    if need.fits_in(free):
        return now  # held back only by another reservation
    for end, held in sorted((e for e in entry.ends if e[0] is not None), key=lambda e: e[0] or 0):
        free = free + held
        if need.fits_in(free):
            return end
    return NEVER
