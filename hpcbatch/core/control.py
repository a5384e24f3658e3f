"""CancelJob, TerminateJob and retention of finished jobs.

Cancel acts on jobs that have not started (SUBMITTED, PENDING, RUNNABLE) and succeeds silently
otherwise, as AWS's does. Terminate also kills STARTING and RUNNING attempts: the job fails with
the given reason once its agent reports the process gone, and is never retried.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core import gang_life
from hpcbatch.core.commands import Command, KillAttempt
from hpcbatch.core.jobs import fail_job
from hpcbatch.core.model import ACTIVE, TERMINAL, Job, attempt_id
from hpcbatch.core.multinode import node_jobs
from hpcbatch.core.state import State


def _target(state: State, job_id: str) -> Job | None:
    """The job a cancel or terminate acts on: a node of a multi-node job stands for its job."""
    job = state.jobs.get(job_id)
    if job is not None and job.node_index is not None and job.parent_id is not None:
        return state.jobs.get(job.parent_id)
    return job


def cancel(state: State, e: ev.CancelJob) -> list[Command]:
    job = _target(state, e.job_id)
    if job is None or job.status in TERMINAL or job.status in ACTIVE:
        return []
    fail_job(state, job, e.cause, e.now, e.reason, cancel=True)
    return []


def terminate(state: State, e: ev.TerminateJob) -> list[Command]:
    job = _target(state, e.job_id)
    if job is None or job.status in TERMINAL:
        return []
    if job.multinode is not None and job.status in ACTIVE:
        return gang_life.terminate_gang(state, job, e)
    targets = state.children_of(job) if job.is_array_parent else [job]
    commands: list[Command] = []
    for target in targets:
        commands.extend(_kill(state, target, e))
    if job.is_array_parent:
        job.is_terminated = True
        fail_job(state, job, e.cause, e.now, e.reason, cancel=True)
    return commands


def _kill(state: State, job: Job, e: ev.TerminateJob) -> list[Command]:
    if job.status in TERMINAL:
        return []
    job.is_terminated = True
    if job.status not in ACTIVE:
        fail_job(state, job, e.cause, e.now, e.reason, cancel=True)
        return []
    job.kill_reason = e.reason
    attempt = job.attempts[-1]
    state.journal(e.now, e.cause, job.job_id, "TERMINATING", e.reason)
    return [
        KillAttempt(
            cause=e.cause,
            node=attempt.node,
            attempt_id=attempt_id(job.job_id, attempt.number),
            reason=e.reason,
        )
    ]


def purge_finished(state: State, e: ev.Tick) -> None:
    """Forget top-level jobs (with their children) finished longer ago than the retention."""
    if e.retention_ms is None:
        return
    horizon = e.now - e.retention_ms
    doomed = [
        j
        for j in state.jobs.values()
        if j.parent_id is None
        and j.status in TERMINAL
        and j.stopped_at is not None
        and j.stopped_at < horizon
    ]
    for job in doomed:
        if job.is_array_parent:
            for child in state.children_of(job):
                state.remove_job(child)
        for node_job in node_jobs(state, job):
            state.remove_job(node_job)
        state.remove_job(job)
