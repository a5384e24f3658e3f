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

A job short of a consumable resource (``consumables``) waits for it without a reservation: it
would idle nodes it cannot use. It still counts toward ``backfill_depth``, and what it is short
of is kept for it for the rest of the pass.

A queue with a scheduling policy orders its jobs by fair share instead (``fairshare``: shares by
decayed usage times weight factor, recomputed as the pass places jobs; ``computeReservation``
keeps capacity for idle shares). Its first blocked job is the share most behind, so it holds, for
the rest of the pass, not one node but every node that could take it, each under the EASY rule
(``fences``): later jobs backfill only on nodes it could never use, or where they end before it
could start there (known from timeouts) or fit beside it. Otherwise shares with smaller jobs
would take, a few vCPUs at a time, the room the share most behind waits for (docs/fairshare.md).
The scan bound is the same.

A multi-node job is placed as a gang (``gang``): all its nodes in the pass, on distinct whole
nodes of one compute environment, or none; blocked, it reserves the nodes where it could start
soonest, under the same EASY rule.

A queue with quota shares is scanned in two phases (``quota_pass``): jobs within their share's
quota, then jobs that borrow; in-quota jobs that find no room name borrowers to preempt, which
the plan carries. The scan of such a queue goes on past a full pool (blocked in-quota jobs may
preempt); it reads only the jobs of shares that can still start something (each share's own
order, merged), and stops when none can.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpcbatch.core.fairshare import FairOrder
from hpcbatch.core.gang import could_ever_start, gang_ready, reserve_gang, try_gang
from hpcbatch.core.model import Job, JobQueue, Resources
from hpcbatch.core.pass_state import (
    NEVER,
    FreeNode,
    Hold,
    Pass,
    allowed,
    attempt_end,
    ends,
    free_at,
    has_room,
    sooner,
    start_reason,
    take,
)
from hpcbatch.core.plan import Placement, Plan, Preemption, Reservation
from hpcbatch.core.quota_pass import PHASES, QuotaLedger, ledger_for
from hpcbatch.core.roomiest import Roomiest
from hpcbatch.core.slurm_gang import on_slurm, tier_is_slurm, total_need
from hpcbatch.core.state import State
from hpcbatch.core.usage import Running, running_by_queue


def _build_pool(state: State) -> dict[str, FreeNode]:
    pool: dict[str, FreeNode] = {}
    enabled = {name for name, ce in state.ces.items() if ce.state == "ENABLED"}
    for node in state.nodes.values():
        if not node.schedulable or node.ce not in enabled:
            continue
        free_gpus = [g.id for g in node.gpus if g.id in node.free_gpus] if node.free_gpus else []
        pool[node.name] = FreeNode(node, node.free, free_gpus)  # its ends: pass_state.ends
    return pool


def _no_room_anywhere(state: State) -> bool:
    """Every node is out of vCPUs or memory: each queue's scan would stop at its first look
    (``full``), so the pass would place and reserve nothing. Read from the nodes' own numbers,
    without building the pool: with 1,000 nodes busy, building it was most of the head's work
    for each submission (docs/benchmarks.md "Issue 15"). A queue with quota shares scans even
    a full pool (an in-quota job may preempt), so then the pass runs."""
    if state.quota_shares:
        return False
    for node in state.nodes.values():
        used, capacity = node.allocated, node.capacity
        # room first (cheap); a DOWN or draining node's room takes nothing (a lost node's is
        # all room)
        if (
            used.cpu_milli < capacity.cpu_milli
            and used.memory_mib < capacity.memory_mib
            and node.schedulable
        ):
            return False
    return True


def schedule(state: State, now: int, backfill_depth: int = 200) -> Plan:
    if _no_room_anywhere(state):
        return Plan()
    pool = _build_pool(state)
    if not pool:
        return Plan()
    run = Pass(state, now, pool)
    preemptions: list[Preemption] = []
    running = running_by_queue(state, now) if state.policies else {}
    for queue in sorted(state.queues.values(), key=lambda q: (-q.priority, q.seq)):
        if queue.state == "ENABLED" and state.runnable.get(queue.name):
            ledger = ledger_for(run, queue)
            if ledger is None:
                _schedule_queue(run, queue, backfill_depth, running=running.get(queue.name))
                continue
            for phase in PHASES:
                ledger.start(phase)
                _schedule_queue(run, queue, backfill_depth, quota=ledger)
            ledger.finish(run, [f for tier in _queue_pool(run, queue) for f in tier])
            preemptions.extend(ledger.preemptions)
    reservations = tuple(h.reservation for holds in run.holds.values() for h in holds)
    return Plan(tuple(run.placements), reservations, tuple(preemptions))


def _queue_pool(run: Pass, queue: JobQueue) -> list[list[FreeNode]]:
    """The queue's nodes by compute environment, in its order, each CE's by name (sorted once
    a pass, not once a queue: ten queues on 1,000 nodes sorted them ten times a pass)."""
    if not run.tiers:
        for entry in sorted(run.pool.values(), key=lambda f: f.node.name):
            run.tiers.setdefault(entry.node.ce, []).append(entry)
    return [run.tiers[ce] for ce in queue.ce_order if ce in run.tiers]


def _fifo(run: Pass, queue: JobQueue) -> Iterable[Job]:
    jobs = run.state.jobs
    return (jobs[key[3]] for key in run.state.runnable[queue.name])


def _queue_order(
    run: Pass, queue: JobQueue, quota: QuotaLedger | None, fair: FairOrder | None
) -> Iterable[Job]:
    """The queue's jobs in the order the pass tries them: its quota shares' merged orders, its
    fair-share order, or FIFO (a queue never has both quota shares and a scheduling policy)."""
    if quota is not None:
        jobs = run.state.jobs
        return (jobs[key[3]] for key in quota.order(run.state))
    return fair if fair is not None else _fifo(run, queue)


def _schedule_queue(
    run: Pass,
    queue: JobQueue,
    backfill_depth: int,
    quota: QuotaLedger | None = None,
    running: Running | None = None,
) -> None:
    tiers = _queue_pool(run, queue)
    if not tiers:
        return
    flat = [f for tier in tiers for f in tier]
    blocked_shapes: set[Shape] = set()
    reserved = False
    blocked = 0

    roomy = 0  # flat[:roomy] have no room left; room only shrinks in a pass (pass_state.take)

    def full() -> bool:
        """No node of the queue has room: each node is looked at until it fills, not once a
        job (O(nodes) a queue a pass, where it was O(nodes) a job: 1,000 nodes, docs/
        benchmarks.md "Issue 15")."""
        nonlocal roomy
        while roomy < len(flat):
            entry = flat[roomy]
            if not entry.full:
                if has_room(run, entry):
                    return False
                entry.full = True  # for every queue of the pass
            roomy += 1
        return True

    if quota is None and full():
        return  # full: a fair-share queue need not even rank its shares
    fair = None
    if queue.policy is not None and quota is None:
        fair = FairOrder(run.state, queue, run.now, running)
    for job in _queue_order(run, queue, quota, fair):
        if quota is not None and quota.all_closed():
            return
        # a full pool ends the scan, but for in-quota jobs: one that finds no room may preempt
        may_preempt = quota is not None and quota.phase == PHASES[0]
        if not may_preempt and full():
            return
        if quota is not None and not quota.admits(job):
            continue
        if fair is not None and job.share is not None and not fair.allows(job):
            fair.refuse(job.share)  # computeReservation keeps the rest for idle shares
            blocked += 1
            if blocked >= backfill_depth:
                return
            continue
        if run.gate.waits(job):
            if run.first_blocked is None:
                run.first_blocked = job.job_id
            blocked += 1
            if blocked >= backfill_depth:
                return
            continue
        placed = len(run.placements)
        if not _blocked(run, tiers, flat, job, blocked_shapes):
            if len(run.placements) > placed:
                if quota is not None:
                    quota.book(job, _held(run, job, run.placements[placed:]))
                if fair is not None:
                    fair.placed(job)
            continue
        if quota is not None:
            quota.blocked(flat, job)
        if run.first_blocked is None:
            run.first_blocked = job.job_id
        if not reserved:
            if job.multinode is not None and all(tier_is_slurm(run.state, t) for t in tiers):
                _reserve(run, flat, job, need=total_need(job.multinode))  # on the bridge
            elif job.multinode is not None:
                reserve_gang(run, tiers, job)
            else:
                _reserve(run, flat, job, fence=fair is not None)
            reserved = True
        blocked += 1
        if blocked >= backfill_depth:
            return


def _held(run: Pass, job: Job, placed: list[Placement]) -> Resources:
    """What ``placed`` (one job's placements) will hold: a gang's nodes whole."""
    if job.multinode is None:
        return job.spec.resources
    if placed and on_slurm(run.state, placed[0].node):
        return total_need(job.multinode)  # each node holds its own needs there (slurm_gang)
    total = Resources()
    for p in placed:
        total = total + run.state.nodes[p.node].capacity
    return total


Shape = tuple[Resources, int | None]


def _blocked(
    run: Pass, tiers: list[list[FreeNode]], flat: list[FreeNode], job: Job, shapes: set[Shape]
) -> bool:
    """Place ``job`` if it fits; True when it could start some day but not now (it blocks)."""
    if job.multinode is not None:
        if not gang_ready(run.state, job):
            return False  # its nodes are still stopping from its last attempt
        if try_gang(run, tiers, job):
            return False
        return could_ever_start(run, tiers, job.multinode)  # else MISCONFIGURATION (explain)
    need = job.spec.resources
    shape = (need, job.spec.timeout_s)
    if shape not in shapes and _try_place(run, tiers, job):
        return False
    if not any(need.fits_in(f.node.capacity) for f in flat):
        return False  # MISCONFIGURATION: it blocks nobody (explain says why)
    shapes.add(shape)
    return True


def _try_place(run: Pass, tiers: list[list[FreeNode]], job: Job) -> bool:
    need = job.spec.resources
    end = attempt_end(None, job.spec.timeout_s, run.now)

    def accepts(entry: FreeNode) -> bool:
        return need.fits_in(entry.free) and allowed(run, entry, need, end)

    for tier in tiers:
        ce = tier[0].node.ce
        roomiest = run.roomiest.get(ce)
        if roomiest is None:
            roomiest = run.roomiest[ce] = Roomiest(tier)  # a CE's tier is the same in every queue
        best = roomiest.pick(need.cpu_milli, accepts)
        if best is not None:
            _commit(run, best, job, need, end)
            return True
    return False


def _commit(run: Pass, entry: FreeNode, job: Job, need: Resources, end: int | None) -> None:
    gpus = take(run, entry, need, need.gpus, end)
    run.gate.take(job)
    backfill = run.first_blocked is not None
    run.placements.append(
        Placement(job.job_id, entry.node.name, gpus, backfill, start_reason(run, job.job_id))
    )


def _reserve(
    run: Pass, flat: list[FreeNode], job: Job, fence: bool = False, need: Resources | None = None
) -> None:
    """Reserve, for a blocked ``job``, the node where it could start soonest (in the plan);
    with ``fence``, hold every other node that could take it for the rest of the pass too.
    ``need``: the job's own resources unless given (a gang's total, on a Slurm bridge)."""
    need = job.spec.resources if need is None else need
    best: tuple[int | None, FreeNode] | None = None
    for entry in flat:
        if not need.fits_in(entry.node.capacity):
            continue
        at = _earliest(run, entry, need)
        if best is None or sooner(at, best[0]):
            best = (at, entry)
    if best is None:
        return
    at, entry = best
    spare = free_at(run, entry, at) - need
    reservation = Reservation(job.job_id, entry.node.name, at, need)
    run.holds.setdefault(entry.node.name, []).append(Hold(reservation, spare))
    if not fence:
        return
    for other in flat:
        if other is entry or not need.fits_in(other.node.capacity):
            continue
        when = _earliest(run, other, need)
        fenced = Reservation(job.job_id, other.node.name, when, need)
        run.fences.setdefault(other.node.name, []).append(
            Hold(fenced, free_at(run, other, when) - need)
        )


def _earliest(run: Pass, entry: FreeNode, need: Resources) -> int | None:
    free = entry.free
    if need.fits_in(free):
        return run.now  # held back only by another reservation
    timed = (e for e in ends(run, entry) if e[0] is not None)
    for end, held in sorted(timed, key=lambda e: e[0] or 0):
        free = free + held
        if need.fits_in(free):
            return end
    return NEVER
