"""Gang scheduling: a multi-node job's nodes, all at once, on whole nodes of one CE.

Vocabulary: a **gang** is a multi-node parent with its node jobs. It starts only when, in one
pass, ``num_nodes`` distinct **whole** nodes (ONLINE, nothing allocated, nothing placed there
earlier in the pass) of ONE compute environment of its queue (tried in order) can take node
``i``'s needs; it is never started in part. A placed node job holds its node's whole capacity
and every GPU, so no other job is placed there while it runs, whatever the job itself uses.

A gang that cannot start, first blocked in its queue, reserves the nodes where it could start
soonest: a node is wholly free once every attempt on it has ended (its timeout; an unknown end
counts as never), and the gang's time is the latest of the nodes it would take. Backfill uses
those nodes only for jobs that end before then (EASY, as for single jobs), so a stream of small
jobs cannot starve a big gang. Cost: O(nodes of the queue's CEs) per gang tried.

Nodes may carry a **placement group** (a label from the head's config: a rack, a switch). A
gang is placed inside one group when one can hold it now (groups tried by most free whole
nodes, then name), else across the CE; the choice is in its start reason, hence its story.
A blocked gang's reservation follows the same rule at the soonest time it could start: inside
the group try_gang would choose then (most nodes wholly free by then, then name) when one can
hold it by then, else across the CE; a group never makes it wait longer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from hpcbatch.core.model import Job, JobStatus, MultiNodeSpec, NodeRange, Resources, node_job_id
from hpcbatch.core.pass_state import (
    NEVER,
    FreeNode,
    Hold,
    Pass,
    allowed,
    attempt_end,
    ends,
    sooner,
    start_reason,
    take,
)
from hpcbatch.core.plan import Placement, Reservation
from hpcbatch.core.shared_capacity import fits_together
from hpcbatch.core.slurm_gang import fits_ever, tier_is_slurm, try_slurm_gang
from hpcbatch.core.state import State

T = TypeVar("T")


def _by_demand(shape: MultiNodeSpec) -> list[NodeRange]:
    def demand(r: NodeRange) -> tuple[int, int, int]:
        need = r.spec.resources
        return (need.gpus, need.cpu_milli, need.memory_mib)

    return sorted(shape.ranges, key=demand, reverse=True)


def assign(
    candidates: Sequence[T], shape: MultiNodeSpec, fits: Callable[[T, Resources], bool]
) -> list[T] | None:
    """Distinct candidates for nodes 0..num_nodes-1 (the most demanding ranges first, each
    taking candidates in their order), or None when they cannot hold the whole gang."""
    if len(candidates) < shape.num_nodes:
        return None
    chosen: list[T | None] = [None] * shape.num_nodes
    used: set[int] = set()
    for node_range in _by_demand(shape):
        need = node_range.spec.resources
        index = node_range.first
        for at, candidate in enumerate(candidates):
            if index > node_range.last:
                break
            if at not in used and fits(candidate, need):
                used.add(at)
                chosen[index] = candidate
                index += 1
        if index <= node_range.last:
            return None
    return [c for c in chosen if c is not None]


def gang_ready(state: State, parent: Job) -> bool:
    """Every node job waits to be placed (none is still stopping from a previous attempt)."""
    shape = parent.multinode
    assert shape is not None
    for index in range(shape.num_nodes):
        node_job = state.jobs.get(node_job_id(parent.job_id, index))
        if node_job is None or node_job.status is not JobStatus.PENDING:
            return False
    return True


def _whole(entry: FreeNode) -> bool:
    """Nothing runs there, nor is booked in this pass; a GPU out of service does not make a
    node less whole (the gang gets the GPUs in service)."""
    free, capacity = entry.free, entry.node.capacity
    return (
        not entry.booked
        and not entry.node.attempts
        and free.cpu_milli == capacity.cpu_milli
        and free.memory_mib == capacity.memory_mib
    )


def _fits_capacity(entry: FreeNode, need: Resources) -> bool:
    return need.fits_in(entry.node.capacity)


def could_ever_start(run: Pass, tiers: list[list[FreeNode]], shape: MultiNodeSpec) -> bool:
    for tier in tiers:
        if tier_is_slurm(run.state, tier):
            if any(fits_ever(entry.node, shape) for entry in tier):
                return True
        elif assign(tier, shape, _fits_capacity) is not None:
            return True
    return False


def _groups(whole: list[FreeNode]) -> list[tuple[str, list[FreeNode]]]:
    """The placement groups among ``whole``: the most free whole nodes first, then by name."""
    by_group: dict[str, list[FreeNode]] = {}
    for entry in whole:
        if entry.node.placement_group is not None:
            by_group.setdefault(entry.node.placement_group, []).append(entry)
    return sorted(by_group.items(), key=lambda item: (-len(item[1]), item[0]))


def _choose(
    tier: list[FreeNode], whole: list[FreeNode], shape: MultiNodeSpec
) -> tuple[list[FreeNode] | None, str]:
    """Whole nodes for the gang, inside one placement group when one can hold it, else across
    the CE; and the choice, for the job's story ("" in a CE without groups)."""
    for group, members in _groups(whole):
        chosen = assign(members, shape, _fits_capacity)
        if chosen is not None:
            return chosen, f", placed in placement group {group}"
    chosen = assign(whole, shape, _fits_capacity)
    if chosen is None or not any(f.node.placement_group is not None for f in tier):
        return chosen, ""
    n = shape.num_nodes
    return chosen, f", no placement group could hold {n} nodes: placed across the CE"


def try_gang(run: Pass, tiers: list[list[FreeNode]], parent: Job) -> bool:
    """Place the whole gang in the first CE of the queue that can take it now."""
    shape = parent.multinode
    assert shape is not None
    end = attempt_end(None, parent.spec.timeout_s, run.now)
    for tier in tiers:
        if tier_is_slurm(run.state, tier):  # Slurm places the nodes (slurm_gang.py)
            if try_slurm_gang(run, tier, parent, end):
                return True
            continue
        whole = [f for f in tier if _whole(f) and allowed(run, f, f.node.capacity, end)]
        chosen, where = _choose(tier, whole, shape)
        if chosen is None or (
            run.room
            and not fits_together(run.state, run.room, [(f.node, f.node.free) for f in chosen])
        ):
            continue
        reason = start_reason(run, parent.job_id)
        run.gate.take(parent)
        for index, entry in enumerate(chosen):
            gpus = take(run, entry, entry.node.free, len(entry.gpus), end)
            run.placements.append(
                Placement(
                    node_job_id(parent.job_id, index),
                    entry.node.name,
                    gpus,
                    run.first_blocked is not None,
                    f"{reason} on {len(chosen)} whole nodes of {entry.node.ce}{where}",
                    gang=parent.job_id,
                )
            )
        return True
    return False


def _wholly_free_at(run: Pass, entry: FreeNode) -> int | None:
    if _whole(entry):
        return run.now
    times = [end for end, _ in ends(run, entry)]
    if any(end is NEVER for end in times):
        return NEVER
    return max((end for end in times if end is not None), default=run.now)


Timed = tuple[int | None, FreeNode]  # when a node will be wholly free, and the node


def _latest(chosen: list[Timed]) -> int | None:
    times = [t for t, _ in chosen]
    return NEVER if any(t is NEVER for t in times) else max(t for t in times if t is not None)


def _by_time(entries: list[Timed]) -> list[Timed]:
    return sorted(entries, key=lambda t: (t[0] is NEVER, t[0] or 0))


def _assign_timed(timed: list[Timed], shape: MultiNodeSpec) -> list[Timed] | None:
    return assign(timed, shape, lambda t, need: need.fits_in(t[1].node.capacity))


def _free_by(time: int | None, at: int | None) -> bool:
    return at is NEVER or (time is not NEVER and time is not None and time <= at)


def _reserve_in(run: Pass, tier: list[FreeNode], shape: MultiNodeSpec) -> list[Timed] | None:
    """The nodes of one CE where the gang could start soonest; inside the placement group that
    try_gang would choose at that time (most nodes wholly free by then, then name), when one
    can hold it by then, so the reservation never waits longer for the sake of a group."""
    timed = _by_time([(_wholly_free_at(run, f), f) for f in tier])
    across = _assign_timed(timed, shape)
    if across is None:
        return None
    at = _latest(across)
    by_group: dict[str, list[Timed]] = {}
    for time, entry in timed:
        group = entry.node.placement_group
        if group is not None and _free_by(time, at):
            by_group.setdefault(group, []).append((time, entry))
    for _, members in sorted(by_group.items(), key=lambda item: (-len(item[1]), item[0])):
        inside = _assign_timed(members, shape)
        if inside is not None:
            return inside
    return across


def reserve_gang(run: Pass, tiers: list[list[FreeNode]], parent: Job) -> None:
    """Hold the nodes where the gang could start soonest (the latest of their free times),
    inside one placement group when one can hold it by then (see ``_reserve_in``)."""
    shape = parent.multinode
    assert shape is not None
    best: tuple[int | None, list[Timed]] | None = None
    for tier in tiers:
        if tier_is_slurm(run.state, tier):
            continue  # Slurm orders what waits in it (slurm_gang.py)
        chosen = _reserve_in(run, tier, shape)
        if chosen is None:
            continue
        at = _latest(chosen)
        if best is None or sooner(at, best[0]):
            best = (at, chosen)
    if best is None:
        return
    at, chosen = best
    for _, entry in chosen:
        reservation = Reservation(parent.job_id, entry.node.name, at, entry.node.capacity)
        run.holds.setdefault(entry.node.name, []).append(Hold(reservation, Resources()))
