"""Which jobs held a reservation in the last applied plan, and since when: state, not a clock.

``state.reserved_since[job_id]`` is the ``now`` of the first applied plan in an unbroken run of
applied plans that reserved the job (a single job's node, or a gang's nodes); a plan that no
longer reserves it drops it (it started, or another job is now first blocked). The scheduler
reads it to say why a job started: one that held a reservation "started on its reservation",
as a job ahead of others "started immediately" and one behind a blocked job "backfilled".

The loop applies a plan without placements only when it changes this record (``changes``), so
a head whose plans only reserve does not step the core on every pass. The record is not
persisted: after a head restart the first plan that reserves a job starts its time again.
"""

from __future__ import annotations

from hpcbatch.core.plan import Plan
from hpcbatch.core.state import State


def reserved_ids(plan: Plan) -> set[str]:
    return {reservation.job_id for reservation in plan.reservations}


def changes(state: State, plan: Plan) -> bool:
    """Whether applying ``plan`` would change which jobs are recorded as reserved."""
    return reserved_ids(plan) != state.reserved_since.keys()


def record(state: State, plan: Plan, now: int) -> None:
    """The jobs ``plan`` reserves, each since it was first reserved without a break."""
    held = state.reserved_since
    state.reserved_since = {job_id: held.get(job_id, now) for job_id in sorted(reserved_ids(plan))}


def on_reservation(state: State, job_id: str) -> str | None:
    """The start reason of a job that held a reservation in the last applied plan, else None:
    "started on its reservation (reserved since T, submitted S; epoch ms)"."""
    since = state.reserved_since.get(job_id)
    job = state.jobs.get(job_id)
    if since is None or job is None:
        return None
    return (
        f"started on its reservation (reserved since {since}, submitted {job.created_at}; epoch ms)"
    )
