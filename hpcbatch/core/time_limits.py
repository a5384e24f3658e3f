"""Job state time limits: AWS's ``jobStateTimeLimitActions`` on job queues.

Vocabulary: a queue's **time-limit action** (``TimeLimitAction``) names a ``reason``, a state
(only ``RUNNABLE``), ``max_time_s`` (600-86400) and an action (only ``CANCEL``). A job of that
queue that has been RUNNABLE for longer than ``max_time_s`` and whose explained reason (the
``statusReason`` DescribeJobs shows, ``core/explain.py``) starts with ``reason`` is cancelled
with ``cancel_reason`` as its statusReason. As on AWS the time is approximate: jobs are checked
at most every ``CHECK_EVERY_MS`` of Tick time, and a job's clock starts when it became RUNNABLE
(after a head restart, at the first check: ``State.runnable_since`` is not persisted).

Cost: a check reads only queues that have actions, and explains only their jobs RUNNABLE for
longer than the queue's smallest ``max_time_s``: O(RUNNABLE jobs of those queues) dict reads
plus one ``explain`` per such old job, every ``CHECK_EVERY_MS``.
"""

from __future__ import annotations

from hpcbatch.core.explain import explain
from hpcbatch.core.jobs import fail_job
from hpcbatch.core.model import JobQueue, JobStatus, TimeLimitAction
from hpcbatch.core.state import State

CHECK_EVERY_MS = 10_000


def cancel_reason(action: TimeLimitAction) -> str:
    return (
        f"Cancelled by the job queue's jobStateTimeLimitActions: {action.state} with reason "
        f"{action.reason} for longer than {action.max_time_s} seconds"
    )


def enforce(state: State, cause: str, now: int) -> None:
    """Cancel every job past one of its queue's time-limit actions (at most every
    ``CHECK_EVERY_MS``)."""
    last = state.time_limits_checked_at
    if last is not None and now - last < CHECK_EVERY_MS:
        return
    state.time_limits_checked_at = now
    for queue in list(state.queues.values()):
        if queue.time_limit_actions:
            _enforce_queue(state, queue, cause, now)


def _enforce_queue(state: State, queue: JobQueue, cause: str, now: int) -> None:
    oldest_ms = min(a.max_time_s for a in queue.time_limit_actions) * 1000
    since = state.runnable_since
    old: list[tuple[str, int]] = []
    for key in state.runnable.get(queue.name, ()):
        job_id = key[3]
        became = since.setdefault(job_id, now)
        if now - became > oldest_ms:
            old.append((job_id, now - became))
    for job_id, waited_ms in old:
        job = state.jobs.get(job_id)
        if job is None or job.status is not JobStatus.RUNNABLE:
            continue  # ended by an earlier cancel of this pass (an array parent's)
        reason = explain(state, job, now=now) or ""
        for action in queue.time_limit_actions:
            if waited_ms > action.max_time_s * 1000 and reason.startswith(action.reason):
                fail_job(state, job, cause, now, cancel_reason(action), cancel=True)
                break
