"""Preemptions of a plan applied, and what becomes of a preempted attempt.

``PlanApplied`` checks each preemption again against the state before it kills anything: the
attempt is still the job's live one and not being stopped already, the job it is for still
waits, and the victim is still a borrower of its share (or, for in-share preemption, still of
lower schedulingPriority than the job of its share that waits). Then the job's ``kill_reason``
is the preemption's reason, the journal tells both jobs' stories, and the agent is told to kill.
The preemptions made for a multi-node job (whole nodes on several hosts) are applied all or none:
if one of them is no longer due, stopping the others would not make room for the gang. A victim
that has ended meanwhile does not hold them back (its room is free).

A preempted attempt does not use up one of the job's ``retryStrategy.attempts``: like Slurm's
REQUEUE, the job goes back to RUNNABLE however many attempts it had, since it did nothing wrong.
Its attempt is still recorded (with the reason), and ``AWS_BATCH_JOB_ATTEMPT`` counts it.
"""

from __future__ import annotations

from hpcbatch.core import attempts, gang_life
from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command, KillAttempt
from hpcbatch.core.model import ACTIVE, Attempt, Job, JobStatus, attempt_id
from hpcbatch.core.multinode import node_jobs
from hpcbatch.core.plan import Preemption
from hpcbatch.core.quotas import PREEMPTED, share_of_job, share_uses
from hpcbatch.core.state import State

REQUEUED = "preempted: requeued (a preemption does not use up an attempt)"


def apply_preemptions(state: State, e: ev.PlanApplied) -> list[Command]:
    commands: list[Command] = []
    vetoed = _gangs_not_due(state, e.plan.preemptions)
    for p in e.plan.preemptions:
        victim = state.jobs.get(p.job_id)
        waiting = state.jobs.get(p.for_job)
        if victim is None or waiting is None or p.for_job in vetoed:
            continue
        if not _still_due(state, p, victim, waiting):
            continue
        aid = attempt_id(victim.job_id, p.attempt)
        state.journal(e.now, e.cause, waiting.job_id, "PREEMPTS", f"{aid} on {p.node}")
        if victim.node_index is not None:
            commands += _preempt_gang(state, state.jobs[victim.parent_id or ""], p.reason, e)
            continue
        victim.kill_reason = p.reason
        detail = f"attempt {p.attempt}: {p.reason}"
        state.journal(e.now, e.cause, victim.job_id, "PREEMPTED", detail)
        commands.append(KillAttempt(cause=e.cause, node=p.node, attempt_id=aid, reason=p.reason))
    return commands


def _preempt_gang(state: State, parent: Job, reason: str, e: ev.PlanApplied) -> list[Command]:
    """Stop every node of a multi-node job: it is requeued whole once its nodes have ended
    (``gang_life`` decides the gang on the first node that ends, as for any failure)."""
    parent.kill_reason = reason
    state.journal(e.now, e.cause, parent.job_id, "PREEMPTED", reason)
    commands: list[Command] = []
    for node_job in node_jobs(state, parent):
        if node_job.status not in ACTIVE or node_job.kill_reason is not None:
            continue
        node_job.kill_reason = reason
        attempt = node_job.attempts[-1]
        if gang_life.waits_at_barrier(node_job):  # never sent to its agent: it ends now
            commands += attempts.end_attempt(
                state, node_job, attempt, e.cause, e.now, None, reason, e.now
            )
            continue
        aid = attempt_id(node_job.job_id, attempt.number)
        commands.append(
            KillAttempt(cause=e.cause, node=attempt.node, attempt_id=aid, reason=reason)
        )
    return commands


def _gangs_not_due(state: State, preemptions: tuple[Preemption, ...]) -> set[str]:
    """The multi-node jobs waiting for preemptions of which one is no longer due (all or none:
    a part of them would stop jobs without making room for the whole gang)."""
    vetoed: set[str] = set()
    for p in preemptions:
        waiting = state.jobs.get(p.for_job)
        if waiting is None or waiting.multinode is None or p.for_job in vetoed:
            continue
        victim = state.jobs.get(p.job_id)
        if victim is None or not _live(victim, p):
            continue  # ended meanwhile: its room is free, the others are still needed
        if not _still_due(state, p, victim, waiting):
            vetoed.add(p.for_job)
    return vetoed


def _live(victim: Job, p: Preemption) -> bool:
    return victim.status in ACTIVE and len(victim.attempts) == p.attempt


def _still_due(state: State, p: Preemption, victim: Job, waiting: Job) -> bool:
    if not _live(victim, p) or victim.attempts[-1].node != p.node or victim.kill_reason is not None:
        return False
    if waiting.status is not JobStatus.RUNNABLE:
        return False
    if victim.node_index is not None:
        parent = state.jobs.get(victim.parent_id or "")
        if parent is None or parent.status not in ACTIVE or parent.kill_reason is not None:
            return False
    share = share_of_job(state, victim)
    if share is None:
        return False
    same_share = victim.share == waiting.share and waiting.queue == victim.queue
    lower = victim.spec.priority < waiting.spec.priority
    if same_share and share.in_share_preemption and lower:
        return True
    entry = share_uses(state, victim.queue).get(share.key)
    return entry is not None and any(r.job is victim for r in entry.borrowers)


def preempted(attempt: Attempt) -> bool:
    return attempt.reason is not None and attempt.reason.startswith(PREEMPTED)


def counted_attempts(job: Job) -> int:
    """The attempts that count against ``retryStrategy.attempts``: all but preempted ones."""
    return sum(1 for a in job.attempts if not preempted(a))


def requeue(job: Job, attempt: Attempt) -> bool:
    """True when ``attempt`` was preempted and the job goes back to RUNNABLE (unless the job
    was terminated meanwhile); clears the kill so the next attempt starts clean."""
    if job.is_terminated or not preempted(attempt):
        return False
    job.kill_reason = None
    return True


def finished_anyway(job: Job, exit_code: int | None) -> bool:
    """A job that succeeded as its preemption came: a success, not a preemption."""
    if exit_code == 0 and job.kill_reason is not None and job.kill_reason.startswith(PREEMPTED):
        job.kill_reason = None
        return True
    return False
