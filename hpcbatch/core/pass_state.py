"""The working data of one scheduling pass: each node's free resources and expected ends,
the reservations being honoured, and the placements so far. Shared by ``scheduler`` (single
jobs) and ``gang`` (multi-node jobs); nothing here outlives the pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

from hpcbatch.core import shared_capacity
from hpcbatch.core.consumables import PassGate
from hpcbatch.core.model import Node, Resources
from hpcbatch.core.plan import Placement, Reservation
from hpcbatch.core.reserved import on_reservation
from hpcbatch.core.state import State

if TYPE_CHECKING:
    from hpcbatch.core.roomiest import Roomiest

NEVER = None  # an unknown end time


End = tuple[int | None, Resources]  # when something held on a node ends (NEVER: unknown), what


@dataclass(slots=True)
class FreeNode:
    node: Node
    free: Resources
    gpus: list[str]  # free GPU ids, in the node's order
    booked: list[End] = field(default_factory=list)  # what this pass placed there
    # its live attempts' ends, read from the state when first needed (``ends``)
    running: list[End] | None = None
    full: bool = False  # found without room in this pass (room only shrinks in a pass)


@dataclass(slots=True)
class Hold:
    """A reservation being honoured during the pass: what the reserved job leaves spare."""

    reservation: Reservation
    spare: Resources


@dataclass(slots=True)
class Pass:
    state: State
    now: int
    pool: dict[str, FreeNode]
    holds: dict[str, list[Hold]] = field(default_factory=dict)
    # A fair-share queue's first blocked job holds every node that could take it, for this pass
    # only (not in the plan): ``scheduler._reserve``.
    fences: dict[str, list[Hold]] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)
    first_blocked: str | None = None
    gate: PassGate = field(init=False)  # consumable resources left in this pass
    room: dict[shared_capacity.Group, Resources] = field(init=False)  # shared limits' room
    roomiest: dict[str, Roomiest] = field(default_factory=dict)  # by CE: scheduler._try_place
    tiers: dict[str, list[FreeNode]] = field(default_factory=dict)  # by CE: scheduler._queue_pool

    def __post_init__(self) -> None:
        self.gate = PassGate(self.state)
        self.room = shared_capacity.rooms(self.state)


def attempt_end(start: int | None, timeout_s: int | None, now: int) -> int | None:
    if timeout_s is None:
        return NEVER
    return (start if start is not None else now) + timeout_s * 1000


def _holds(run: Pass, node: str) -> Iterable[Hold]:
    """The node's reservations and the pass's fences on it (``scheduler._reserve``)."""
    holds = run.holds.get(node, ())
    fences = run.fences.get(node)
    return chain(holds, fences) if fences else holds


def allowed(run: Pass, entry: FreeNode, need: Resources, end: int | None) -> bool:
    """``need`` may go on ``entry`` now: no reservation or fence it would delay, and room in
    the limits its node shares with others (the machine, its CE's maxvCpus: ``shared_capacity``)."""
    if run.room and not shared_capacity.fits(run.state, run.room, entry.node, need):
        return False
    for hold in _holds(run, entry.node.name):
        at = hold.reservation.at
        ends_first = end is not None and at is not None and end <= at
        if not ends_first and not need.fits_in(hold.spare):
            return False
    return True


def has_room(run: Pass, entry: FreeNode) -> bool:
    """Some vCPU and memory left on ``entry`` and in the limits its node shares."""
    free = entry.free
    if free.cpu_milli <= 0 or free.memory_mib <= 0:
        return False
    return not run.room or shared_capacity.has_room(run.state, run.room, entry.node)


def ends(run: Pass, entry: FreeNode) -> list[End]:
    """When what holds ``entry`` ends: its live attempts and this pass's placements. The
    attempts are read on first need, by a reservation: a pass over a full cluster reads none
    of its (maybe 100,000) running attempts (docs/benchmarks.md "Issue 15")."""
    if entry.running is None:
        entry.running = []
        jobs = run.state.jobs
        for aid in entry.node.attempts:
            job = jobs[aid.rpartition("/")[0]]
            attempt = job.attempts[-1]
            end = attempt_end(attempt.started_at, job.spec.timeout_s, run.now)
            entry.running.append((end, attempt.resources))
    return entry.running + entry.booked if entry.booked else entry.running


def free_at(run: Pass, entry: FreeNode, at: int | None) -> Resources:
    free = entry.free
    for end, held in ends(run, entry):
        if end is not None and (at is None or end <= at):
            free = free + held
    return free


def sooner(a: int | None, b: int | None) -> bool:
    return a is not None and (b is None or a < b)


def take(
    run: Pass, entry: FreeNode, need: Resources, gpus: int, end: int | None
) -> tuple[str, ...]:
    """Book ``need`` and ``gpus`` GPUs of ``entry`` for an attempt ending at ``end``."""
    taken = tuple(entry.gpus[:gpus])
    del entry.gpus[:gpus]
    entry.free = entry.free - need
    entry.booked.append((end, need))
    if run.room:
        shared_capacity.book(run.state, run.room, entry.node, need)
    for hold in _holds(run, entry.node.name):
        at = hold.reservation.at
        if not (end is not None and at is not None and end <= at):
            hold.spare = hold.spare - need
    return taken


def start_reason(run: Pass, job_id: str) -> str:
    """Why ``job_id`` starts in this pass: behind a blocked job, by backfill; else on the
    reservation it held in the last applied plan (see ``reserved``), or immediately."""
    ahead = run.first_blocked
    if ahead is not None:
        return f"backfilled ahead of {ahead}"
    return on_reservation(run.state, job_id) or "started immediately"
