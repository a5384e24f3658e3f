"""A job's life after submission: finishing, failing, dependencies and array parents.

Vocabulary: a job *finishes* when it reaches SUCCEEDED or FAILED; its *dependents* are the jobs
waiting on it. A failure spreads to dependents ("Dependent Job failed"), a success releases
them; an array parent finishes when its last child does. A multi-node parent's status follows
its main node (``gang_life``); when it finishes, its node jobs not yet placed finish with it.
"""

from __future__ import annotations

from hpcbatch.core.model import ACTIVE, TERMINAL, Job, JobStatus, node_job_id
from hpcbatch.core.state import State

SUCCESS_REASON = "Essential container in task exited"


# Iterating an enum class is slow on 3.11 (~1 µs a member); this runs at every child's end.
_UNFINISHED = tuple(s for s in JobStatus if s not in TERMINAL)


def finish_job(
    state: State, job: Job, status: JobStatus, cause: str, now: int, reason: str
) -> None:
    """Move a job to a terminal status and let everything that waited on it move on."""
    work = [(job, status, reason)]
    while work:
        current, new_status, why = work.pop()
        if current.status in TERMINAL:
            continue
        current.status_reason = why
        current.stopped_at = now
        state.set_status(current, new_status, cause, now, why)
        work.extend(_after_finish(state, current, cause, now))


def fail_job(
    state: State, job: Job, cause: str, now: int, reason: str, *, cancel: bool = False
) -> None:
    """Fail a job that has not started (or whose attempt already ended) with ``reason``."""
    if job.status in TERMINAL:
        return
    if cancel:
        job.is_cancelled = True
    if job.is_array_parent:
        for child in state.children_of(job):
            if child.status not in TERMINAL and child.status not in ACTIVE:
                child.is_cancelled = child.is_cancelled or cancel
                finish_job(state, child, JobStatus.FAILED, cause, now, reason)
        if job.status not in TERMINAL and not _children_active(state, job):
            finish_job(state, job, JobStatus.FAILED, cause, now, reason)
        return
    finish_job(state, job, JobStatus.FAILED, cause, now, reason)


def _children_active(state: State, parent: Job) -> bool:
    counts = state.child_counts.get(parent.job_id)
    return counts is not None and any(counts[s] for s in _UNFINISHED)


def dependency_failed(failed: Job) -> str:
    """A dependent's statusReason, the same whether ``failed`` failed before or after it was
    submitted: ``Dependent Job failed: <id> <its reason>``."""
    return f"Dependent Job failed: {failed.job_id} {failed.status_reason or ''}".strip()[:255]


def _after_finish(state: State, job: Job, cause: str, now: int) -> list[tuple[Job, JobStatus, str]]:
    follow: list[tuple[Job, JobStatus, str]] = []
    for dep_id in state.dependents.pop(job.job_id, set()):
        dependent = state.jobs.get(dep_id)
        if dependent is None or dependent.status in TERMINAL:
            continue
        if job.status is JobStatus.SUCCEEDED:
            dependent.waiting_on.discard(job.job_id)
            if not dependent.waiting_on and dependent.status is JobStatus.PENDING:
                release(state, dependent, cause, now)
        else:
            follow.append((dependent, JobStatus.FAILED, dependency_failed(job)))
    if job.parent_id is not None:
        follow.extend(_parent_after_child(state, job.parent_id))
    if job.multinode is not None:
        follow.extend(_idle_nodes_follow(state, job))
    return follow


def _idle_nodes_follow(state: State, parent: Job) -> list[tuple[Job, JobStatus, str]]:
    """A finished multi-node job takes its unplaced node jobs with it; placed ones end when
    their attempts do (they are being stopped)."""
    shape = parent.multinode
    assert shape is not None
    follow = []
    for index in range(shape.num_nodes):
        node_job = state.jobs.get(node_job_id(parent.job_id, index))
        if node_job is not None and node_job.status is JobStatus.PENDING:
            node_job.is_cancelled = parent.is_cancelled
            follow.append((node_job, parent.status, parent.status_reason or ""))
    return follow


def release(state: State, job: Job, cause: str, now: int) -> None:
    """A PENDING job whose dependencies all succeeded becomes RUNNABLE."""
    job.status_reason = None
    if job.is_array_parent:
        return  # the parent stays PENDING while its children run
    state.set_status(job, JobStatus.RUNNABLE, cause, now, "dependencies satisfied")


def _parent_after_child(state: State, parent_id: str) -> list[tuple[Job, JobStatus, str]]:
    parent = state.jobs.get(parent_id)
    if parent is None or parent.multinode is not None:
        return []  # a multi-node job follows its main node (gang_life), not a count
    if parent.status in TERMINAL or _children_active(state, parent):
        return []
    counts = state.child_counts[parent_id]
    failed = counts[JobStatus.FAILED]
    if failed:
        why = f"{failed} of {parent.array_size} child jobs failed"
        return [(parent, JobStatus.FAILED, why)]
    return [(parent, JobStatus.SUCCEEDED, f"all {parent.array_size} child jobs succeeded")]
