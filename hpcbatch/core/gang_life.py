"""A gang's life: started whole, main node last, ended together.

Vocabulary: the **gang** is a multi-node parent and its node jobs ``<parent>#<i>``; the **main
node** is ``multinode.main_node``. Rules (AWS's, plus the start barrier):

- **Start**: a plan's placements for one gang are checked again, all of them, and start all or
  none. Every node gets an attempt holding its whole node; the other nodes are launched at once,
  the main node is **held at the barrier** (STARTING, allocation held, statusReason
  ``BARRIER``) and launched only once every other node is up (RUNNING, or already ended with
  0), so its ``mpirun`` finds every node up.
- **Status**: the parent follows the main node: STARTING, RUNNING, then its end.
- **End**: the gang is decided by the first of: the main node ends (its exit code decides), or
  another node fails (non-zero exit, never started, host lost) first. Then every other node
  still placed is stopped (KillAttempt; a main node still held at the barrier ends at once),
  and the parent's retryStrategy applies to the whole gang: a retry puts the parent back to
  RUNNABLE and each node job back to PENDING once its attempt is over, to be placed again as
  new attempts. A node that ends with 0 before the main node is SUCCEEDED meanwhile (reopened if
  the gang retries).
- **Terminate** stops every node; the job fails with the terminate reason, never retried.

On a SLURM compute environment the nodes go to Slurm as one job, with no barrier and no
addresses from the head (``slurm_gang``).
"""

from __future__ import annotations

from collections.abc import Sequence

from hpcbatch.core import attempts, consumables, preemption, shared_capacity, slurm_gang
from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command, KillAttempt
from hpcbatch.core.jobs import SUCCESS_REASON, finish_job
from hpcbatch.core.model import (
    ACTIVE,
    TERMINAL,
    Attempt,
    Job,
    JobStatus,
    MultiNodeSpec,
    attempt_id,
    node_job_id,
)
from hpcbatch.core.multinode import node_jobs
from hpcbatch.core.plan import Placement
from hpcbatch.core.retry import should_retry
from hpcbatch.core.state import State

BARRIER = "start barrier: waiting for every other node to be RUNNING"
STOPPED_BY_MAIN = "stopped: the main node exited"


def _shape(parent: Job) -> MultiNodeSpec:
    assert parent.multinode is not None
    return parent.multinode


def _placeable(state: State, parent: Job | None, placements: Sequence[Placement]) -> bool:
    """Every node of the gang, placed on distinct whole nodes of one enabled CE of its queue."""
    if parent is None or parent.multinode is None or parent.status is not JobStatus.RUNNABLE:
        return False
    queue = state.queues.get(parent.queue)
    names = [p.node for p in placements]
    nodes = [state.nodes.get(name) for name in names]
    ces = {n.ce for n in nodes if n is not None}
    ce = state.ces.get(next(iter(ces))) if len(ces) == 1 else None
    if queue is None or queue.state != "ENABLED" or ce is None or ce.state != "ENABLED":
        return False
    if ce.name not in queue.ce_order:
        return False
    if consumables.shortage(state, consumables.needs(parent)) is not None:
        return False
    if ce.kind == slurm_gang.SLURM:  # every node on the bridge, Slurm places them
        bridge = nodes[0]
        return bridge is not None and slurm_gang.placeable(state, parent, placements, bridge)
    if len(set(names)) != parent.multinode.num_nodes:
        return False
    for index, (p, node) in enumerate(zip(placements, nodes, strict=True)):
        job = state.jobs.get(p.job_id)
        if job is None or p.job_id != node_job_id(parent.job_id, index) or node is None:
            return False
        whole = not node.attempts and node.free_gpus == node.gpus_in_service
        if job.status is not JobStatus.PENDING or not node.schedulable or not whole:
            return False
        if set(p.gpus) != node.free_gpus or not job.spec.resources.fits_in(node.free):
            return False
    held = [(n, n.free) for n in nodes if n is not None and shared_capacity.groups_of(state, n)]
    return not held or shared_capacity.fits_together(state, shared_capacity.rooms(state), held)


def start_gang(state: State, placements: Sequence[Placement], e: ev.PlanApplied) -> list[Command]:
    """Start the whole gang, or nothing when any placement no longer holds."""
    parent = state.jobs.get(placements[0].gang or "")
    if parent is None or not _placeable(state, parent, placements):
        return []
    shape = _shape(parent)
    in_slurm = slurm_gang.on_slurm(state, placements[0].node)
    launches: list[Command] = []
    held: list[tuple[Job, Attempt]] = []
    for p in placements:
        job = state.jobs[p.job_id]
        need = job.spec.resources if in_slurm else state.nodes[p.node].free  # else whole
        held.append((job, attempts.hold_node(state, job, p, need, e)))
    parent.start_reason = placements[0].reason
    parent.status_reason = None
    where = ", ".join(p.node for p in placements)
    state.set_status(
        parent, JobStatus.STARTING, e.cause, e.now, f"on {where}, {parent.start_reason}"
    )
    for job, attempt in held:
        if job.node_index == shape.main_node and shape.num_nodes > 1 and not in_slurm:
            job.status_reason = BARRIER
        else:
            launches.append(attempts.launch_of(state, job, attempt, e.cause))
    return launches


def waits_at_barrier(job: Job) -> bool:
    """A main node held at the start barrier: placed, never sent to its agent."""
    return job.status is JobStatus.STARTING and job.status_reason == BARRIER


def node_started(state: State, job: Job, cause: str, now: int) -> list[Command]:
    """A node is RUNNING: the parent follows the main node; the last other node up opens the
    barrier (the main node's launch)."""
    parent = state.jobs[job.parent_id or ""]
    shape = _shape(parent)
    follow_main(state, job, cause, now)
    if job.node_index == shape.main_node:
        return []
    return _open_barrier(state, parent, cause, now)


def _up(job: Job) -> bool:
    """RUNNING, or SUCCEEDED in the gang's current try after a reported start."""
    if job.status is JobStatus.RUNNING:
        return True
    ran = bool(job.attempts) and job.attempts[-1].started_at is not None
    return job.status is JobStatus.SUCCEEDED and ran


def _open_barrier(state: State, parent: Job, cause: str, now: int) -> list[Command]:
    """The main node's launch, once every other node is up: RUNNING, or already ended well
    (a node may start and exit 0 within one agent turn, before the barrier opens)."""
    main = state.jobs[node_job_id(parent.job_id, _shape(parent).main_node)]
    if not waits_at_barrier(main):
        return []
    others = (j for j in node_jobs(state, parent) if j is not main)
    if not all(_up(j) for j in others):
        return []
    main.status_reason = None
    state.journal(now, cause, main.job_id, "BARRIER_OPEN", "every other node is up")
    return [attempts.launch_of(state, main, main.attempts[-1], cause)]


def follow_main(state: State, job: Job, cause: str, now: int) -> None:
    parent = state.jobs[job.parent_id or ""]
    if job.node_index != _shape(parent).main_node or parent.status is not JobStatus.STARTING:
        return
    parent.started_at = job.started_at
    state.set_status(parent, JobStatus.RUNNING, cause, now, f"main node {job.job_id} RUNNING")


def node_environment(state: State, job: Job) -> dict[str, str]:
    """AWS's multi-node variables; the main node's address is set on every node, the main
    node's own included (AWS sets it on the others only)."""
    parent = state.jobs[job.parent_id or ""]
    shape = _shape(parent)
    main = state.jobs[node_job_id(parent.job_id, shape.main_node)]
    env = {
        "AWS_BATCH_JOB_NODE_INDEX": str(job.node_index),
        "AWS_BATCH_JOB_NUM_NODES": str(shape.num_nodes),
        "AWS_BATCH_JOB_MAIN_NODE_INDEX": str(shape.main_node),
    }
    if main.attempts and slurm_gang.on_slurm(state, main.attempts[-1].node):
        return env  # the addresses are Slurm's: the bridge's script sets them (slurm_gang)
    if main.attempts:
        address = state.nodes[main.attempts[-1].node].address
        if address is not None:
            env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] = address
            env["HPCBATCH_MAIN_NODE"] = address
    env.update(_allocation_environment(state, parent))
    return env


def _allocation_environment(state: State, parent: Job) -> dict[str, str]:
    """``HPCBATCH_HOSTS`` ("addr:slots,...", node-index order, slots = the vCPUs allocated,
    at least 1) and ``HPCBATCH_LAUNCH_PEERS`` ("addr=port,...", the nodes whose agent runs
    a launch server) of the gang's current try: every node holds its attempt by the time any
    node is launched (``start_gang`` holds them all first)."""
    hosts: list[str] = []
    peers: list[str] = []
    for node_job in node_jobs(state, parent):
        if not node_job.attempts:
            continue
        attempt = node_job.attempts[-1]
        node = state.nodes.get(attempt.node)
        address = (node.address if node is not None else None) or attempt.node
        hosts.append(f"{address}:{max(1, attempt.cpu_milli // 1000)}")
        if node is not None and node.launch_port is not None:
            peers.append(f"{address}={node.launch_port}")
    return {"HPCBATCH_HOSTS": ",".join(hosts), "HPCBATCH_LAUNCH_PEERS": ",".join(peers)}


def _why_failed(job: Job, attempt: Attempt) -> str:
    where = f"node {job.node_index} ({attempt.node})"
    reason = attempt.reason or ""
    if reason.startswith("Host lost"):
        return f"node {job.node_index} lost: {reason}"
    if attempt.exit_code is not None and not reason:
        return f"{where} exited {attempt.exit_code}"
    if attempt.exit_code is not None:
        return f"{where} exited {attempt.exit_code}: {reason}"
    return f"{where}: {reason or 'ended without an exit code'}"


def node_ended(state: State, job: Job, attempt: Attempt, cause: str, now: int) -> list[Command]:
    """A node's attempt is over (its allocation already released): decide the gang, or settle
    a node that was being stopped."""
    parent = state.jobs[job.parent_id or ""]
    if parent.status not in ACTIVE:
        _settle(state, parent, job, attempt, cause, now)
        return []
    is_main = job.node_index == _shape(parent).main_node
    ok = attempt.exit_code == 0 and job.kill_reason is None and not parent.is_terminated
    if ok and not is_main:
        finish_job(state, job, JobStatus.SUCCEEDED, cause, now, SUCCESS_REASON)
        return _open_barrier(state, parent, cause, now)
    _decide(state, parent, job, attempt, ok, cause, now)
    return _stop_others(state, parent, job, cause, now)


def _decide(
    state: State, parent: Job, job: Job, attempt: Attempt, ok: bool, cause: str, now: int
) -> None:
    parent.stopped_at = attempt.stopped_at
    if ok:
        finish_job(state, job, JobStatus.SUCCEEDED, cause, now, SUCCESS_REASON)
        finish_job(state, parent, JobStatus.SUCCEEDED, cause, now, SUCCESS_REASON)
        return
    is_main = job.node_index == _shape(parent).main_node
    why = parent.kill_reason if parent.is_terminated else None
    lost = (attempt.reason or "").startswith("Host lost")
    own = attempt.reason if is_main and not lost else None  # the main node's reason is the job's
    why = why or own or _why_failed(job, attempt)
    if not parent.is_terminated and preemption.preempted(attempt):
        retry, rule = True, preemption.REQUEUED  # quota shares: no attempt used up
        parent.kill_reason = None
    elif parent.is_terminated:
        retry, rule = False, "terminated"
    else:
        made = preemption.counted_attempts(job)
        retry, rule = should_retry(parent.spec.retry, made, attempt.exit_code, attempt.reason, why)
    detail = f"gang attempt {len(job.attempts)}: {why}: {rule}"
    if retry:
        parent.status_reason = None
        state.set_status(parent, JobStatus.RUNNABLE, cause, now, detail)
        _settle(state, parent, job, attempt, cause, now)
        return
    state.journal(now, cause, parent.job_id, "NOT_RETRIED", detail)
    finish_job(state, parent, JobStatus.FAILED, cause, now, why[:255])
    _settle(state, parent, job, attempt, cause, now)


def _settle(state: State, parent: Job, job: Job, attempt: Attempt, cause: str, now: int) -> None:
    """A node whose gang is decided: back to PENDING for a retry, else its own end."""
    stopped_by_main = job.kill_reason == STOPPED_BY_MAIN
    if parent.status is JobStatus.RUNNABLE:
        job.kill_reason = None
        job.status_reason = None
        state.set_status(job, JobStatus.PENDING, cause, now, "the gang is retried")
        return
    if attempt.exit_code == 0 or (parent.status is JobStatus.SUCCEEDED and stopped_by_main):
        finish_job(state, job, JobStatus.SUCCEEDED, cause, now, attempt.reason or SUCCESS_REASON)
        return
    finish_job(state, job, JobStatus.FAILED, cause, now, (attempt.reason or "failed")[:255])


def _stop_others(state: State, parent: Job, ended: Job, cause: str, now: int) -> list[Command]:
    """Stop every other node still placed; reopen finished ones when the gang retries."""
    reason = STOPPED_BY_MAIN
    if parent.is_terminated and parent.kill_reason:
        reason = parent.kill_reason
    elif parent.status is not JobStatus.SUCCEEDED:
        reason = f"stopped: {parent.status_reason or 'the job is retried'}"
    commands: list[Command] = []
    for other in node_jobs(state, parent):
        if other is ended:
            continue
        if other.status in TERMINAL and parent.status is JobStatus.RUNNABLE:
            other.status_reason = None
            state.set_status(other, JobStatus.PENDING, cause, now, "the gang is retried")
        elif waits_at_barrier(other):
            other.kill_reason = reason
            attempt = other.attempts[-1]
            commands += attempts.end_attempt(state, other, attempt, cause, now, None, reason, now)
        elif other.status in ACTIVE and other.kill_reason is None:
            other.kill_reason = reason
            aid = attempt_id(other.job_id, other.attempts[-1].number)
            commands.append(
                KillAttempt(
                    cause=cause, node=other.attempts[-1].node, attempt_id=aid, reason=reason
                )
            )
    return commands


def terminate_gang(state: State, parent: Job, e: ev.TerminateJob) -> list[Command]:
    """Stop every node of a started gang; it fails with ``e.reason`` once its main node ends."""
    parent.is_terminated = True
    parent.kill_reason = e.reason
    state.journal(e.now, e.cause, parent.job_id, "TERMINATING", e.reason)
    commands: list[Command] = []
    waiting: list[Job] = []
    for node_job in node_jobs(state, parent):
        if waits_at_barrier(node_job):
            waiting.append(node_job)
        elif node_job.status in ACTIVE and node_job.kill_reason is None:
            node_job.kill_reason = e.reason
            attempt = node_job.attempts[-1]
            aid = attempt_id(node_job.job_id, attempt.number)
            commands.append(
                KillAttempt(cause=e.cause, node=attempt.node, attempt_id=aid, reason=e.reason)
            )
    for node_job in waiting:  # never sent: nothing to kill, it ends now
        if waits_at_barrier(node_job):
            node_job.kill_reason = e.reason
            commands += attempts.end_attempt(
                state, node_job, node_job.attempts[-1], e.cause, e.now, None, e.reason, e.now
            )
    return commands
