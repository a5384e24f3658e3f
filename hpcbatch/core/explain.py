"""Why a job waits: a precise ``statusReason`` for PENDING and RUNNABLE jobs, from the whole state.

Computed when asked (DescribeJobs, ``hpcbatch describe``), never stored: with 100,000 queued jobs
a pass must not rewrite 100,000 reasons. Reasons, most fundamental first:
queue disabled; no enabled compute environment; MISCONFIGURATION (no node could ever hold it);
no nodes; every fitting node DOWN/DRAINED; a reservation; otherwise the jobs ahead of it.
"""

from __future__ import annotations

from hpcbatch.core.capacity import largest_fit_problem, queue_nodes
from hpcbatch.core.gang_wait import gang_reason
from hpcbatch.core.model import Job, JobStatus
from hpcbatch.core.plan import Reservation
from hpcbatch.core.state import State, runnable_key


def explain(state: State, job: Job, reservations: tuple[Reservation, ...] = ()) -> str | None:
    if job.status is JobStatus.PENDING:
        return _pending(state, job)
    if job.status is JobStatus.RUNNABLE:
        return _runnable(state, job, reservations)
    return job.status_reason


def _pending(state: State, job: Job) -> str | None:
    if job.is_array_parent and not job.waiting_on:
        counts = state.child_counts.get(job.job_id)
        if counts is None:
            return None
        done = counts[JobStatus.SUCCEEDED] + counts[JobStatus.FAILED]
        return f"array: {done} of {job.array_size} children finished"
    if job.node_index is not None and job.parent_id is not None:
        parent = state.jobs.get(job.parent_id)
        status = parent.status.value if parent else "gone"
        return job.status_reason or (
            f"node {job.node_index} of multi-node job {job.parent_id} ({status}): its nodes "
            "are placed together"
        )
    if not job.waiting_on:
        return job.status_reason
    first = sorted(job.waiting_on)[0]
    target = state.jobs.get(first)
    what = f"{first} ({target.status.value})" if target else first
    more = len(job.waiting_on) - 1
    return f"waiting for dependency {what}" + (f" and {more} more" if more else "")


def _runnable(state: State, job: Job, reservations: tuple[Reservation, ...]) -> str:
    queue = state.queues[job.queue]
    if queue.state != "ENABLED":
        return f"queue disabled: {queue.name} is {queue.state}; jobs wait until it is ENABLED"
    enabled = [c for c in queue.ce_order if state.ces[c].state == "ENABLED"]
    if not enabled:
        return f"no ENABLED compute environment in queue {queue.name} ({', '.join(queue.ce_order)})"
    if job.multinode is not None:
        return gang_reason(state, job, enabled, reservations)
    need = job.spec.resources
    problem = largest_fit_problem(state, queue, need)
    if problem is not None:
        return problem
    nodes = [n for n in queue_nodes(state, queue) if n.ce in enabled]
    if not nodes:
        return f"waiting for nodes: compute environments [{', '.join(enabled)}] have no nodes"
    fitting = [n for n in nodes if need.fits_in(n.capacity)]
    if not any(n.schedulable for n in fitting):
        states = ", ".join(f"{n.name} {n.state.value}" for n in fitting[:3])
        return f"waiting for nodes: every node that can hold it is unavailable ({states})"
    for r in reservations:
        if r.job_id == job.job_id:
            when = "when running jobs end" if r.at is None else f"by {r.at} (epoch ms)"
            return f"reserved: next to start on {r.node} {when}; smaller jobs backfill around it"
    ahead = state.runnable[queue.name].index(runnable_key(job))
    higher = sum(
        len(state.runnable.get(q.name, ()))
        for q in state.queues.values()
        if q.priority > queue.priority and q.state == "ENABLED" and set(q.ce_order) & set(enabled)
    )
    reason = f"waiting for capacity: {ahead} jobs ahead in queue {queue.name}"
    if higher:
        reason += f" and {higher} in higher-priority queues"
    return reason + f"; needs {need.describe()}"
