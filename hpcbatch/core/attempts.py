"""Attempts: starting placed jobs, and what happens when an attempt starts, ends or is lost.

An attempt holds an **allocation** on its node from STARTING until it ends. When it ends the
allocation is released, the result is recorded, and the retry strategy decides between another
attempt (back to RUNNABLE) and the end of the job. Every ended attempt is acknowledged to its
agent by the loop once it has made the result durable.
"""

from __future__ import annotations

from hpcbatch.core import consumables, gang_life, overdue, preemption, reserved, shared_capacity
from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command, KillAttempt, LaunchAttempt
from hpcbatch.core.gpus import is_uuid, release
from hpcbatch.core.jobs import SUCCESS_REASON, finish_job
from hpcbatch.core.model import (
    ACTIVE,
    Attempt,
    Job,
    JobStatus,
    NodeState,
    Resources,
    attempt_id,
    parse_attempt_id,
)
from hpcbatch.core.plan import Placement
from hpcbatch.core.retry import should_retry
from hpcbatch.core.state import State
from hpcbatch.core.usage import record_attempt


def apply_plan(state: State, e: ev.PlanApplied) -> list[Command]:
    reserved.record(state, e.plan, e.now)  # for the start reasons of the next plan
    # before the placements: a victim is judged as the plan judged it (core/preemption.py)
    commands: list[Command] = preemption.apply_preemptions(state, e) if e.plan.preemptions else []
    placements = e.plan.placements
    shared = shared_capacity.Ledger(state)  # the shared limits' room, as attempts start
    i = 0
    while i < len(placements):
        gang = placements[i].gang
        if gang is not None:
            j = i
            while j < len(placements) and placements[j].gang == gang:
                j += 1
            commands.extend(gang_life.start_gang(state, placements[i:j], e))
            shared.forget()  # the gang's holds are in the nodes now: measured again if needed
            i = j
            continue
        launch = _start(state, placements[i], e, shared)
        if launch is not None:
            commands.append(launch)
        i += 1
    return commands


def _placeable(state: State, p: Placement, job: Job | None, shared: shared_capacity.Ledger) -> bool:
    node = state.nodes.get(p.node)
    if job is None or node is None or job.status is not JobStatus.RUNNABLE:
        return False
    queue = state.queues.get(job.queue)
    ce = state.ces.get(node.ce)
    if queue is None or ce is None or ce.state != "ENABLED" or queue.state != "ENABLED":
        return False
    need = job.spec.resources
    return (
        consumables.shortage(state, consumables.needs(job)) is None
        and node.schedulable
        and node.ce in queue.ce_order
        and need.fits_in(node.free)
        and len(p.gpus) == need.gpus
        and set(p.gpus) <= node.free_gpus
        and shared.fits(node, need)
    )


def _start(
    state: State, p: Placement, e: ev.PlanApplied, shared: shared_capacity.Ledger
) -> LaunchAttempt | None:
    job = state.jobs.get(p.job_id)
    if not _placeable(state, p, job, shared):
        return None
    assert job is not None
    attempt = hold_node(state, job, p, job.spec.resources, e)
    shared.book(state.nodes[p.node], job.spec.resources)
    return launch_of(state, job, attempt, e.cause)


def hold_node(state: State, job: Job, p: Placement, need: Resources, e: ev.PlanApplied) -> Attempt:
    """A new attempt of ``job`` holding ``need`` and ``p``'s GPUs on ``p.node``: STARTING."""
    node = state.nodes[p.node]
    attempt = Attempt(len(job.attempts) + 1, node.name, need.cpu_milli, need.memory_mib, p.gpus)
    attempt.scheduled_at = e.now
    job.attempts.append(attempt)
    aid = attempt_id(job.job_id, attempt.number)
    node.allocated = node.allocated + need
    node.free_gpus -= set(p.gpus)
    node.attempts.add(aid)
    consumables.hold(state, job)
    job.start_reason = p.reason
    job.status_reason = None
    state.set_status(job, JobStatus.STARTING, e.cause, e.now, f"on {node.name}, {p.reason}")
    return attempt


def launch_of(state: State, job: Job, attempt: Attempt, cause: str) -> LaunchAttempt:
    """The command that starts ``attempt`` (again, after a reconnect that lost it)."""
    return LaunchAttempt(
        cause=cause,
        node=attempt.node,
        attempt_id=attempt_id(job.job_id, attempt.number),
        job_id=job.job_id,
        command=job.spec.command,
        environment=job_environment(state, job, attempt),
        cpu_milli=attempt.cpu_milli,
        memory_mib=attempt.memory_mib,
        gpus=attempt.gpus,
        timeout_s=job.spec.timeout_s,
        user=job.spec.user,
        workdir=job.spec.workdir,
        gang_try=f"{job.parent_id}/{attempt.number}" if job.node_index is not None else None,
    )


def declared_environment(state: State, job: Job) -> tuple[tuple[str, str], ...]:
    """The job's own variables, and for a placed node of a gang its CE's fabric variables
    under them (a job overrides a fabric variable by setting it): what DescribeJobs shows."""
    node = state.nodes.get(job.attempts[-1].node) if job.attempts else None
    if job.node_index is None or node is None or not node.fabric_env:
        return job.spec.environment
    return tuple({**dict(node.fabric_env), **dict(job.spec.environment)}.items())


def job_environment(state: State, job: Job, attempt: Attempt) -> tuple[tuple[str, str], ...]:
    node = state.nodes[attempt.node]
    gang_node = job.node_index is not None and job.parent_id is not None
    env = dict(declared_environment(state, job))
    env["AWS_BATCH_JOB_ID"] = job.job_id
    env["AWS_BATCH_JOB_ATTEMPT"] = str(attempt.number)
    env["AWS_BATCH_CE_NAME"] = node.ce
    env["AWS_BATCH_JQ_NAME"] = job.queue
    if gang_node:
        env.update(gang_life.node_environment(state, job))
    if job.array_index is not None and job.parent_id is not None:
        env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_index)
        env["AWS_BATCH_JOB_ARRAY_SIZE"] = str(state.jobs[job.parent_id].array_size)
    env.update(gpu_environment(attempt.gpus, env))
    return tuple(env.items())


def gpu_environment(gpus: tuple[str, ...], declared: dict[str, str]) -> dict[str, str]:
    """What tells CUDA and the NVIDIA container runtime which GPUs the job may use.

    A job with GPUs sees exactly its own, named by **UUID** where its node knows them: CUDA and
    the container runtime both take ``GPU-…`` UUIDs, and a UUID names one board whatever
    ``CUDA_DEVICE_ORDER`` the job picks and however a reboot renumbers the boards. A GPU known
    only by its index (a host without nvidia-smi, its GPUs from the config) is named by that
    index, with ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA counts in nvidia-smi's order (CUDA's
    default, fastest first, could make index 0 another board). The job's own environment
    cannot widen either. A job without GPUs sees none: CUDA reports no device when
    ``CUDA_VISIBLE_DEVICES`` is set empty, and ``NVIDIA_VISIBLE_DEVICES=void`` exposes none in a
    container; unset, both would show every GPU of the host. A job that sets either variable
    itself keeps its value (no GPU is held for it, so that is its own choice)."""
    if gpus:
        visible = ",".join(gpus)
        env = {"CUDA_VISIBLE_DEVICES": visible, "NVIDIA_VISIBLE_DEVICES": visible}
        if not all(is_uuid(gpu) for gpu in gpus) or "CUDA_DEVICE_ORDER" not in declared:
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        return env
    return {
        name: value
        for name, value in (("CUDA_VISIBLE_DEVICES", ""), ("NVIDIA_VISIBLE_DEVICES", "void"))
        if name not in declared
    }


def held_attempt(state: State, node: str, aid: str) -> tuple[Job, Attempt] | None:
    """The job and live attempt that the agent of ``node`` names by ``aid``, or None: an id
    that is no attempt id, of an unknown or finished job, of an attempt that is no longer the
    job's live one (a stale or repeated report), or of an attempt on another node."""
    parsed = parse_attempt_id(aid)
    job = state.jobs.get(parsed[0]) if parsed is not None else None
    if parsed is None or job is None or job.status not in ACTIVE:
        return None
    if len(job.attempts) != parsed[1] or job.attempts[-1].node != node:
        return None
    return job, job.attempts[-1]


def foreign_report(state: State, node: str, aid: str) -> str | None:
    """Why the agent of ``node`` may not speak of ``aid`` at all; None when it may.

    It may report attempts placed on it: live ones, ended ones (a late or repeated result,
    which the head acknowledges and ignores) and ones of jobs the head no longer knows
    (forgotten after their retention). Anything else is no attempt of this node's.
    """
    parsed = parse_attempt_id(aid)
    if parsed is None:
        return "not an attempt id (<jobId>/<number>)"
    job_id, number = parsed
    job = state.jobs.get(job_id)
    if job is None:
        return None
    if number > len(job.attempts):
        return f"job {job_id} has no attempt {number}"
    placed = job.attempts[number - 1].node
    if placed != node:
        return f"attempt {number} of job {job_id} was placed on node {placed}, not {node}"
    return None


def _started(
    state: State,
    job: Job,
    attempt: Attempt,
    cause: str,
    now: int,
    started_at: int,
    pid: int | None,
    log_stream: str | None,
) -> None:
    attempt.started_at = started_at
    attempt.pid = pid
    attempt.log_stream = log_stream
    job.started_at = started_at
    overdue.watch(state, job, attempt)
    if job.status is JobStatus.STARTING:
        job.status_reason = None  # where another scheduler had it wait (attempt_queued)
        where = f"pid {pid} on {attempt.node}" if pid is not None else f"on {attempt.node}"
        state.set_status(job, JobStatus.RUNNING, cause, now, where)


def attempt_queued(state: State, e: ev.AttemptQueued) -> list[Command]:
    """A STARTING job's attempt waits in Slurm: its statusReason says why, in Slurm's words, and
    its story records each new reason."""
    found = held_attempt(state, e.node, e.attempt_id)
    if found is None:
        return []
    job, attempt = found
    if job.status is not JobStatus.STARTING or attempt.started_at is not None:
        return []
    reason = e.reason[:255]
    if job.status_reason != reason:
        job.status_reason = reason
        state.changes.touch("job", job.job_id)
        state.journal(e.now, e.cause, job.job_id, "QUEUED", reason)
    return []


def attempt_started(state: State, e: ev.AttemptStarted) -> list[Command]:
    found = held_attempt(state, e.node, e.attempt_id)
    if found is None:
        return []
    job, attempt = found
    was = job.status
    _started(state, job, attempt, e.cause, e.now, e.started_at, e.pid, e.log_stream)
    if job.kill_reason is not None:  # terminated while still starting
        return [
            KillAttempt(
                cause=e.cause, node=attempt.node, attempt_id=e.attempt_id, reason=job.kill_reason
            )
        ]
    if job.node_index is not None and was is JobStatus.STARTING:
        return gang_life.node_started(state, job, e.cause, e.now)
    return []


def attempt_ended(state: State, e: ev.AttemptEnded) -> list[Command]:
    found = held_attempt(state, e.node, e.attempt_id)
    if found is None:
        return []  # stale or repeated (the result is recorded), or not this node's to report
    job, attempt = found
    if job.status is JobStatus.STARTING and e.started_at is not None:
        _started(state, job, attempt, e.cause, e.now, e.started_at, e.pid, e.log_stream)
        if job.node_index is not None:
            gang_life.follow_main(state, job, e.cause, e.now)
    return end_attempt(
        state, job, attempt, e.cause, e.now, e.exit_code, e.reason, e.stopped_at, e.started_at
    )


def end_attempt(
    state: State,
    job: Job,
    attempt: Attempt,
    cause: str,
    now: int,
    exit_code: int | None,
    reason: str | None,
    stopped_at: int,
    started_at: int | None = None,
) -> list[Command]:
    """Record how ``attempt`` ended and decide what comes next: the job's end, a retry, or
    (for a node of a multi-node job) what the gang does; commands are kills of other nodes."""
    _release(state, job, attempt)
    preemption.finished_anyway(job, exit_code)
    if attempt.started_at is None:
        attempt.started_at = started_at
    attempt.stopped_at = stopped_at
    attempt.exit_code = exit_code
    attempt.reason = reason or job.kill_reason
    job.stopped_at = stopped_at
    record_attempt(state, job, attempt)
    if job.node_index is not None:
        return gang_life.node_ended(state, job, attempt, cause, now)
    if exit_code == 0 and job.kill_reason is None:
        finish_job(state, job, JobStatus.SUCCEEDED, cause, now, SUCCESS_REASON)
        return []
    status_reason = attempt.reason or SUCCESS_REASON
    if preemption.requeue(job, attempt):
        retry, why = True, preemption.REQUEUED
    elif job.is_terminated:
        retry, why = False, "terminated"
        if preemption.preempted(attempt) and job.kill_reason:
            status_reason = job.kill_reason  # terminated while being preempted: the user's word
    else:
        made = preemption.counted_attempts(job)
        retry, why = should_retry(job.spec.retry, made, exit_code, attempt.reason, status_reason)
    detail = f"attempt {attempt.number} exit {exit_code} ({attempt.reason or 'no reason'}): {why}"
    if retry:
        job.status_reason = None
        state.set_status(job, JobStatus.RUNNABLE, cause, now, detail)
        return []
    state.journal(now, cause, job.job_id, "NOT_RETRIED", detail)
    finish_job(state, job, JobStatus.FAILED, cause, now, status_reason[:255])
    return []


def _release(state: State, job: Job, attempt: Attempt) -> None:
    node = state.nodes.get(attempt.node)
    if node is None:
        return
    aid = attempt_id(job.job_id, attempt.number)
    if aid in node.attempts:
        node.attempts.discard(aid)
        consumables.release(state, job)
        node.allocated = node.allocated - attempt.resources
        release(state, node, attempt.gpus)
    if node.state is NodeState.DRAINING and not node.attempts:
        node.state = NodeState.DRAINED
        state.changes.touch("node", node.name)
