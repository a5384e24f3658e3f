"""CancelJob, TerminateJob and retention of finished jobs.

Cancel acts on jobs that have not started (SUBMITTED, PENDING, RUNNABLE) and succeeds silently
otherwise, as AWS's does; a job handed to Slurm and still waiting in its queue (STARTING on a
SLURM compute environment, its attempt not started) has not started either: cancel takes it
out of Slurm's queue (``scancel``), and it fails with the cancel's reason. Terminate also
kills STARTING and RUNNING attempts: the job fails with the given reason once its agent reports
the process gone, and is never retried.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core import gang_life
from hpcbatch.core.commands import Command, KillAttempt
from hpcbatch.core.jobs import fail_job
from hpcbatch.core.model import ACTIVE, TERMINAL, Job, JobStatus, attempt_id
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
    if job is None or job.status in TERMINAL:
        return []
    commands: list[Command] = []
    for target in state.children_of(job) if job.is_array_parent else [job]:
        if waits_in_slurm(state, target):
            commands.extend(_kill(state, target, e.cause, e.now, e.reason))
    if job.status not in ACTIVE:
        fail_job(state, job, e.cause, e.now, e.reason, cancel=True)
    return commands


def waits_in_slurm(state: State, job: Job) -> bool:
    """STARTING on a SLURM compute environment's bridge, and not started in Slurm yet."""
    if job.status is not JobStatus.STARTING or job.node_index is not None or not job.attempts:
        return False
    attempt = job.attempts[-1]
    node = state.nodes.get(attempt.node)
    ce = state.ces.get(node.ce) if node is not None else None
    return attempt.started_at is None and ce is not None and ce.kind == "SLURM"


def terminate(state: State, e: ev.TerminateJob) -> list[Command]:
    job = _target(state, e.job_id)
    if job is None or job.status in TERMINAL:
        return []
    if job.multinode is not None and job.status in ACTIVE:
        return gang_life.terminate_gang(state, job, e)
    targets = state.children_of(job) if job.is_array_parent else [job]
    commands: list[Command] = []
    for target in targets:
        commands.extend(_kill(state, target, e.cause, e.now, e.reason))
    if job.is_array_parent:
        job.is_terminated = True
        fail_job(state, job, e.cause, e.now, e.reason, cancel=True)
    return commands


def _kill(state: State, job: Job, cause: str, now: int, reason: str) -> list[Command]:
    if job.status in TERMINAL:
        return []
    job.is_terminated = True
    if job.status not in ACTIVE:
        fail_job(state, job, cause, now, reason, cancel=True)
        return []
    job.kill_reason = reason
    attempt = job.attempts[-1]
    state.journal(now, cause, job.job_id, "TERMINATING", reason)
    return [
        KillAttempt(
            cause=cause,
            node=attempt.node,
            attempt_id=attempt_id(job.job_id, attempt.number),
            reason=reason,
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
