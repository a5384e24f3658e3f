"""Why a job waits: a precise ``statusReason`` for PENDING and RUNNABLE jobs, from the whole state.

Computed when asked (DescribeJobs, ``hpcbatch describe``), never stored: with 100,000 queued jobs
a pass must not rewrite 100,000 reasons. Reasons, most fundamental first:
queue disabled; no enabled compute environment; MISCONFIGURATION (no node could ever hold it);
no nodes; every fitting node DOWN/DRAINED; a consumable resource it is short of; its quota share
(at its quota and unable to borrow, or waiting for borrowers it preempted: ``quota_explain``); a
limit its nodes share with others, the machine or its CE's maxvCpus (``shared_capacity``); a
reservation; on a fair-share queue, the share served before its own (or computeReservation);
otherwise the jobs ahead of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcbatch.core.capacity import largest_fit_problem, queue_nodes
from hpcbatch.core.consumables import wait_reason
from hpcbatch.core.fairshare import Ranking, fair_share_reason
from hpcbatch.core.gang_wait import gang_reason
from hpcbatch.core.model import (
    Job,
    JobQueue,
    JobStatus,
    Node,
    Resources,
    format_vcpus,
    plural,
    vcpus_text,
)
from hpcbatch.core.plan import Reservation
from hpcbatch.core.pool_fit import job_shape, pool_fit_problem
from hpcbatch.core.quota_explain import quota_wait
from hpcbatch.core.shared_capacity import wait_reason as wait_for_shared
from hpcbatch.core.state import State, runnable_key


@dataclass(frozen=True, slots=True)
class _NodeFacts:
    """What a queue's nodes say of jobs of one size: the first of these that is not None is
    the job's reason, before what is its own (consumables, quota, reservation, fair share)."""

    problem: str | None  # MISCONFIGURATION or no nodes, or every fitting node unavailable
    shared: str | None  # a limit the fitting nodes share has no room
    full: str | None  # what every fitting node is short of


@dataclass(slots=True)
class Memo:
    """What one request's explanations share (the state does not change during a request):
    each fair-share queue's ranking, and the node facts for each queue and job size. Without
    it, a ListJobs page of 100 RUNNABLE jobs on 1,000 nodes read the nodes 100 times (~300 ms,
    docs/benchmarks.md "Issue 15"), and the metrics snapshot once for each queue."""

    rankings: dict[str, Ranking] = field(default_factory=dict)
    # by the queue's compute environments (all the facts read of a queue) and the job's size
    nodes: dict[tuple[tuple[str, ...], Resources], _NodeFacts] = field(default_factory=dict)


def explain(
    state: State,
    job: Job,
    reservations: tuple[Reservation, ...] = (),
    now: int | None = None,
    memo: Memo | None = None,
) -> str | None:
    """``now`` dates a fair-share queue's usage (None: the latest time its usage knows);
    ``memo`` carries what the jobs of one request share (``Memo``)."""
    if job.status is JobStatus.PENDING:
        return _pending(state, job)
    if job.status is JobStatus.RUNNABLE:
        return _runnable(state, job, reservations, now, memo or Memo())
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


def _runnable(
    state: State,
    job: Job,
    reservations: tuple[Reservation, ...],
    now: int | None,
    memo: Memo,
) -> str:
    queue = state.queues[job.queue]
    if queue.state != "ENABLED":
        return f"queue disabled: {queue.name} is {queue.state}; jobs wait until it is ENABLED"
    enabled = [c for c in queue.ce_order if state.ces[c].state == "ENABLED"]
    if not enabled:
        return f"no ENABLED compute environment in queue {queue.name} ({', '.join(queue.ce_order)})"
    if state.pool_hosts:  # the head's host pools, their hosts' known sizes (pool_fit)
        ces = [state.ces[c] for c in enabled]
        problem = pool_fit_problem(ces, state.pool_hosts, job_shape(job))
        if problem is not None:
            return problem
    if job.multinode is not None:
        held = quota_wait(state, job) if job.share is not None else None
        return wait_reason(state, job) or held or gang_reason(state, job, enabled, reservations)
    need = job.spec.resources
    facts = _node_facts(state, queue, enabled, need, memo)
    if facts.problem is not None:
        return facts.problem
    waiting = wait_reason(state, job)
    if waiting is not None:
        return waiting
    share_reason = quota_wait(state, job) if job.share is not None else None
    if share_reason is not None:
        return share_reason
    # a node with room of its own, none left in a limit it shares: that limit is why, even for
    # the job holding a reservation there (it starts when the machine or the CE has room)
    if facts.shared is not None:
        return facts.shared
    for r in reservations:
        if r.job_id == job.job_id:
            when = "when running jobs end" if r.at is None else f"by {r.at} (epoch ms)"
            return f"reserved: next to start on {r.node} {when}; smaller jobs backfill around it"
    fair = fair_share_reason(state, job, now, memo.rankings)
    if fair is not None:
        return f"{fair}; needs {need.describe()}"
    ahead = state.runnable[queue.name].index(runnable_key(job))
    higher = sum(
        len(state.runnable.get(q.name, ()))
        for q in state.queues.values()
        if q.priority > queue.priority and q.state == "ENABLED" and set(q.ce_order) & set(enabled)
    )
    reason = "waiting for capacity: "
    if facts.full:
        reason += f"every node in [{', '.join(enabled)}] is full: {facts.full}; "
    reason += f"{plural(ahead, 'job')} ahead in queue {queue.name}"
    if higher:
        reason += f" and {higher} in higher-priority queues"
    return reason + f"; needs {need.describe()}"


def _node_facts(
    state: State, queue: JobQueue, enabled: list[str], need: Resources, memo: Memo
) -> _NodeFacts:
    key = (tuple(queue.ce_order), need)
    known = memo.nodes.get(key)
    if known is not None:
        return known
    facts = _NodeFacts(None, None, None)
    problem = largest_fit_problem(state, queue, need)
    nodes = [n for n in queue_nodes(state, queue) if n.ce in enabled]
    fitting = [n for n in nodes if need.fits_in(n.capacity)]
    if problem is None and not nodes:
        problem = f"waiting for nodes: compute environments [{', '.join(enabled)}] have no nodes"
    if problem is None and not any(n.schedulable for n in fitting):
        states = ", ".join(f"{n.name} {n.state.value}" for n in fitting[:3])
        problem = f"waiting for nodes: every node that can hold it is unavailable ({states})"
    if problem is not None:
        facts = _NodeFacts(problem, None, None)
    else:
        usable = [n for n in fitting if n.schedulable]
        facts = _NodeFacts(None, wait_for_shared(state, usable, need), _what_is_full(usable, need))
    memo.nodes[key] = facts
    return facts


def _what_is_full(nodes: list[Node], need: Resources) -> str | None:
    """``2/2 vCPUs in use`` for each resource no node has enough of left, summed over
    ``nodes``; where each node lacks another one, what each lacks (None: one has room)."""
    if not nodes or any(need.fits_in(n.free) for n in nodes):
        return None
    parts = [_in_use(nodes, kind) for kind in _KINDS if all(_short(n, need, kind) for n in nodes)]
    if parts:
        return ", ".join(parts)
    shown = [
        f"{n.name} {_in_use([n], next(k for k in _KINDS if _short(n, need, k)))}" for n in nodes[:3]
    ]
    more = f" and {len(nodes) - 3} more" if len(nodes) > 3 else ""
    return ", ".join(shown) + more


_KINDS = ("cpu", "memory", "gpu")


def _short(node: Node, need: Resources, kind: str) -> bool:
    free = node.free
    if kind == "cpu":
        return free.cpu_milli < need.cpu_milli
    if kind == "memory":
        return free.memory_mib < need.memory_mib
    return free.gpus < need.gpus


def _in_use(nodes: list[Node], kind: str) -> str:
    if kind == "cpu":
        used = sum(n.allocated.cpu_milli for n in nodes)
        total = sum(n.capacity.cpu_milli for n in nodes)
        return f"{format_vcpus(used)}/{vcpus_text(total)} in use"
    if kind == "memory":
        used = sum(n.allocated.memory_mib for n in nodes)
        total = sum(n.capacity.memory_mib for n in nodes)
        return f"{used}/{total} MiB in use"
    held = sum(len(n.gpus_in_service) - len(n.free_gpus) for n in nodes)
    total = sum(len(n.gpus_in_service) for n in nodes)
    return f"{held}/{plural(total, 'GPU')} in use"
