"""What one scheduling pass promises, checked from the state alone (an oracle for property tests).

Vocabulary: a pass's **plan** proposes *placements* (a job on a node) and *reservations* (the first
blocked job of a queue holds a node from ``at``). A job is **ahead** of another in the global order
when its queue comes first (higher ``priority``, then older) or, in one queue, it comes first
(``runnable_key``). A queue's **first blocked** job is its first RUNNABLE job that the plan does not
place but that some node of the queue's compute environments could hold (else it is
MISCONFIGURATION and blocks nobody). Its **earliest start** is the soonest time (epoch ms, None =
never known) at which one of those nodes has room for it, counting each allocation as held until
its attempt's timeout (unknown without one).

The promises (EASY backfill, ``hpcbatch/core/scheduler.py``):
- no node is over-allocated by the plan, and no GPU is given twice or out of thin air;
- every reservation still has room at its ``at`` once every placement of the plan is counted;
- no placement delays a first blocked job: its earliest start counting only the placements of jobs
  ahead of it is no sooner than its earliest start counting them all.

Independent of the scheduler's own bookkeeping (``pass_state``): computed from the nodes'
allocations, the jobs' timeouts and the plan.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpcbatch.core.model import Job, JobStatus, Node, Resources
from hpcbatch.core.plan import Placement, Plan
from hpcbatch.core.state import State, runnable_key

End = int | None  # epoch ms; None: unknown (no timeout)
Held = tuple[End, Resources]


def pool(state: State) -> dict[str, Node]:
    """The nodes a pass may use: schedulable, in an ENABLED compute environment."""
    return {
        n.name: n
        for n in state.nodes.values()
        if n.schedulable and (ce := state.ces.get(n.ce)) is not None and ce.state == "ENABLED"
    }


def _end(start: int | None, timeout_s: int | None, now: int) -> End:
    return None if timeout_s is None else (start if start is not None else now) + timeout_s * 1000


def running(state: State, node: Node, now: int) -> list[Held]:
    """What the node's live attempts hold, and until when."""
    held = []
    for aid in node.attempts:
        job = state.jobs[aid.rpartition("/")[0]]
        attempt = job.attempts[-1]
        held.append((_end(attempt.started_at, job.spec.timeout_s, now), attempt.resources))
    return held


def order_key(state: State, job: Job) -> tuple[int, int, tuple[object, ...]]:
    queue = state.queues[job.queue]
    return (-queue.priority, queue.seq, tuple(runnable_key(job)))


def _placed(state: State, placements: Iterable[Placement], now: int) -> dict[str, list[Held]]:
    by_node: dict[str, list[Held]] = {}
    for p in placements:
        spec = state.jobs[p.job_id].spec
        by_node.setdefault(p.node, []).append((_end(None, spec.timeout_s, now), spec.resources))
    return by_node


def free_at(node: Node, state: State, extra: list[Held], at: End, now: int) -> Resources:
    """The node's room at ``at`` (None: once every known end has passed)."""
    free = node.free
    for _, need in extra:
        free = free - need
    for end, need in running(state, node, now) + extra:
        if end is not None and (at is None or end <= at):
            free = free + need
    return free


def earliest_start(node: Node, state: State, extra: list[Held], need: Resources, now: int) -> End:
    """The soonest time from ``now`` at which ``need`` fits on ``node`` (None: never known)."""
    if not need.fits_in(node.capacity):
        return None
    ends = sorted({e for e, _ in running(state, node, now) + extra if e is not None})
    for at in [now, *ends]:
        if need.fits_in(free_at(node, state, extra, at, now)):
            return max(at, now)
    return None


def _sooner(a: End, b: End) -> bool:
    return a is not None and (b is None or a < b)


def check_no_over_allocation(state: State, plan: Plan) -> None:
    nodes = pool(state)
    given: set[str] = set()
    by_node = _placed(state, plan.placements, 0)
    for p in plan.placements:
        job = state.jobs[p.job_id]
        assert job.status is JobStatus.RUNNABLE, f"{p.job_id} placed while {job.status}"
        assert p.node in nodes, f"{p.job_id} placed on {p.node}, which takes no job"
        assert nodes[p.node].ce in state.queues[job.queue].ce_order, f"{p.job_id} off its queue"
        assert len(p.gpus) == job.spec.resources.gpus, f"{p.job_id} got GPUs {p.gpus}"
        for gpu in p.gpus:
            assert gpu not in given, f"GPU {gpu} given twice in one plan"
            assert gpu in nodes[p.node].free_gpus, f"{p.job_id} got {gpu}, not free on {p.node}"
            given.add(gpu)
    for name, held in by_node.items():
        left = nodes[name].free
        for _, need in held:
            left = left - need
        assert Resources().fits_in(left), f"{name} over-allocated by the plan: {left} left"


def check_reservations_kept(state: State, plan: Plan, now: int) -> None:
    """A placement behind a reserved job, on its node, that may still run at the reservation's
    ``at``, must leave the reserved job its room then (at None, "when running jobs end", every
    such placement counts: none may take the room of a job waiting on unknown ends)."""
    nodes = pool(state)
    for r in plan.reservations:
        if r.node not in nodes:
            continue
        key = order_key(state, state.jobs[r.job_id])
        behind = [
            held
            for p in plan.placements
            if p.node == r.node and order_key(state, state.jobs[p.job_id]) > key
            for held in _placed(state, [p], now)[p.node]
            if r.at is None or held[0] is None or held[0] > r.at
        ]
        if not behind:
            continue
        room = free_at(
            nodes[r.node], state, _placed(state, plan.placements, now)[r.node], r.at, now
        )
        assert r.need.fits_in(room), (
            f"reservation of {r.job_id} on {r.node} at {r.at} broken by {len(behind)} placements "
            f"behind it: {room} left, needs {r.need}"
        )


def first_blocked(state: State, plan: Plan) -> dict[str, Job]:
    """Each queue's first blocked job (see the module docstring)."""
    nodes = pool(state).values()
    placed = {p.job_id for p in plan.placements}
    found: dict[str, Job] = {}
    for queue in state.queues.values():
        if queue.state != "ENABLED":
            continue
        mine = [n for n in nodes if n.ce in queue.ce_order]
        for key in state.runnable.get(queue.name, ()):
            job = state.jobs[key[3]]
            if job.multinode is not None or job.job_id in placed:
                continue
            if any(job.spec.resources.fits_in(n.capacity) for n in mine):
                found[queue.name] = job
                break
    return found


def check_no_delay(state: State, plan: Plan, now: int) -> None:
    nodes = pool(state)
    for queue_name, job in first_blocked(state, plan).items():
        key = order_key(state, job)
        ahead = [p for p in plan.placements if order_key(state, state.jobs[p.job_id]) < key]
        need = job.spec.resources
        mine = [n for n in nodes.values() if n.ce in state.queues[queue_name].ce_order]
        before_by, after_by = _placed(state, ahead, now), _placed(state, plan.placements, now)
        before: End = None
        after: End = None
        for n in mine:
            b = earliest_start(n, state, before_by.get(n.name, []), need, now)
            a = earliest_start(n, state, after_by.get(n.name, []), need, now)
            before = b if _sooner(b, before) else before
            after = a if _sooner(a, after) else after
        assert not _sooner(before, after), (
            f"the plan delays {job.job_id}, first blocked in {queue_name}: it could start at "
            f"{before} counting the jobs ahead of it, at {after} counting the plan"
        )


def check_pass(state: State, plan: Plan, now: int) -> None:
    """Every promise of one pass (``plan``, proposed for ``state`` at ``now``)."""
    check_no_over_allocation(state, plan)
    check_reservations_kept(state, plan, now)
    check_no_delay(state, plan, now)
