"""``GET /hpcbatch/v1/top``: the one document ``hpcbatch top`` redraws every second.

Vocabulary: a queue's **depth** is how many of its jobs are in each live status (SUBMITTED,
PENDING, RUNNABLE, STARTING, RUNNING) — counting the jobs that run, so an array counts as its
children (its parent, PENDING while they run, is a container, not work) and a multi-node job as
one. **Newest** running jobs are the last to have entered RUNNING, newest failed the last to have
entered FAILED.

Read-only, and cheap enough to answer every second with 100,000 jobs in the system: it never
walks all jobs. ``state.listing[owner][status]`` keeps ids in the order they entered that status,
so the counts are bucket sizes, and the newest ``limit`` of a bucket are the first ``limit`` of
its reversed iteration (O(limit), not O(bucket)). The one walk is over each queue's top-level
SUBMITTED and PENDING ids, to find the array parents whose children hold the depth; the cost is
O(queues + those ids + active arrays × limit + nodes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from hpcbatch.core.model import Job, JobStatus
from hpcbatch.core.state import State

LIVE = (
    JobStatus.SUBMITTED,
    JobStatus.PENDING,
    JobStatus.RUNNABLE,
    JobStatus.STARTING,
    JobStatus.RUNNING,
)
DEFAULT_JOBS = 10
MAX_JOBS = 100


def top_doc(state: State, node_docs: list[dict[str, Any]], limit: int, now: int) -> dict[str, Any]:
    """Queues with depth, the given node documents, and the newest ``limit`` running and failed
    jobs (array children included) with their reasons."""
    queues, arrays = queue_depths(state)
    owners = [*sorted(state.queues), *(job.job_id for job in arrays)]
    failed_owners = list(owners)
    failed_parents = [
        job for job in _newest(state, owners, JobStatus.FAILED, limit) if job.is_array_parent
    ]
    failed_owners.extend(job.job_id for job in failed_parents)
    running = _newest(state, owners, JobStatus.RUNNING, limit)
    failed = _newest(state, failed_owners, JobStatus.FAILED, limit)
    return {
        "time": now,
        "queues": queues,
        "nodes": node_docs,
        "running": [_job_doc(job) for job in running],
        "failed": [_job_doc(job) for job in failed],
    }


def queue_depths(state: State) -> tuple[list[dict[str, Any]], list[Job]]:
    """Each queue (name order) with its state, priority and depth, and the array parents not
    finished (their children are the work)."""
    queues = []
    arrays: list[Job] = []
    for name in sorted(state.queues):
        queue = state.queues[name]
        listing = state.listing.get(name, {})
        depth = {status.value: len(listing.get(status, ())) for status in LIVE}
        for status in (JobStatus.SUBMITTED, JobStatus.PENDING):
            for job_id in listing.get(status, ()):
                job = state.jobs[job_id]
                if job.is_array_parent:
                    arrays.append(job)
                    depth[status.value] -= 1
                    counts = state.child_counts.get(job_id)
                    for live in LIVE:
                        depth[live.value] += counts[live] if counts else 0
        queues.append(
            {"name": name, "state": queue.state, "priority": queue.priority, "depth": depth}
        )
    return queues, arrays


def _newest(state: State, owners: Iterable[str], status: JobStatus, limit: int) -> list[Job]:
    """The ``limit`` jobs that entered ``status`` last among these owners' listings."""
    candidates: dict[str, Job] = {}
    for owner in owners:
        for job_id in _last(state.listing.get(owner, {}).get(status, {}), limit):
            candidates[job_id] = state.jobs[job_id]
    return sorted(candidates.values(), key=_entered, reverse=True)[:limit]


def _last(bucket: dict[str, None], limit: int) -> Iterator[str]:
    return islice(reversed(bucket), limit)


def _entered(job: Job) -> tuple[int, int, int]:
    """When a job entered RUNNING or FAILED, newest largest; seq breaks ties."""
    when = job.stopped_at if job.status is JobStatus.FAILED else job.started_at
    index = -1 if job.array_index is None else job.array_index
    return (when or 0, job.seq, index)


def _job_doc(job: Job) -> dict[str, Any]:
    attempt = job.attempts[-1] if job.attempts else None
    doc: dict[str, Any] = {
        "jobId": job.job_id,
        "jobName": job.name,
        "jobQueue": job.queue,
        "status": job.status.value,
        "statusReason": job.status_reason,
        "startReason": job.start_reason,
        "startedAt": job.started_at,
        "stoppedAt": job.stopped_at,
        "attempts": len(job.attempts),
        "node": attempt.node if attempt else None,
        "exitCode": attempt.exit_code if attempt else None,
    }
    if job.array_index is not None:
        doc["arrayIndex"] = job.array_index
    return {key: value for key, value in doc.items() if value is not None}
