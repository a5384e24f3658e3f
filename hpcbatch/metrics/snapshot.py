"""A snapshot of the head's gauges, built on the loop from the State, read by scrapes.

Vocabulary: **queue depth** counts the jobs that run, per queue and status (SUBMITTED to
RUNNING): array children and the nodes of a multi-node job count, their parents do not (a
parent only follows them). **Wait reasons** classify RUNNABLE jobs by the class of their
``explain`` reason (``REASONS``); PENDING jobs waiting for a dependency count as ``dependency``.
``explain`` is too dear for every job of a 100,000-job queue, so only the first
``CLASSIFIED_PER_QUEUE`` RUNNABLE jobs of each queue (in queue order) are explained one by one;
the jobs behind them count as ``capacity`` (they wait at least for the jobs ahead of them), and
a reason that holds for the whole queue (queue or every compute environment disabled) counts
them all. A single-node job's class follows from its queue, its resource need and its consumable
resources alone (the reservation and the jobs ahead only change the words of a ``capacity``
reason), so one ``explain`` per distinct need of a queue classifies them. Resources are in base units: vCPUs, bytes, GPUs, seconds.

Cost: O(queues x statuses + owners + nodes + CLASSIFIED_PER_QUEUE x queues x nodes): no term
grows with the number of jobs except the PENDING jobs of a queue scanned for dependencies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpcbatch.core.capacity import MISCONFIGURATION
from hpcbatch.core.explain import Memo, explain
from hpcbatch.core.model import Job, JobStatus, NodeState, Resources
from hpcbatch.core.state import State

QUEUE_STATUSES = (
    JobStatus.SUBMITTED,
    JobStatus.PENDING,
    JobStatus.RUNNABLE,
    JobStatus.STARTING,
    JobStatus.RUNNING,
)
REASONS = (
    "capacity",
    "dependency",
    "misconfiguration",
    "queue_disabled",
    "ce_disabled",
    "node_unavailable",
    "consumable",
    "other",
)
NODE_STATES = tuple(s.value for s in NodeState)
CLASSIFIED_PER_QUEUE = 100
MIB = 1024 * 1024

# (ce, node) -> (vcpus, vcpus allocated, memory bytes, memory allocated, gpus, gpus allocated)
Capacity = tuple[float, float, int, int, int, int]


@dataclass(frozen=True)
class Snapshot:
    """What the gauges say at ``taken_at`` (epoch ms); every mapping is the collector's own."""

    taken_at: int = 0
    queue_jobs: Mapping[tuple[str, str], int] = field(default_factory=dict)
    waiting: Mapping[tuple[str, str], int] = field(default_factory=dict)
    ces: Mapping[str, Capacity] = field(default_factory=dict)
    nodes: Mapping[tuple[str, str], Capacity] = field(default_factory=dict)
    node_states: Mapping[tuple[str, str], int] = field(default_factory=dict)
    last_heartbeat: Mapping[tuple[str, str], int] = field(default_factory=dict)  # epoch ms
    cpu_used: Mapping[tuple[str, str], float] = field(default_factory=dict)


def build_snapshot(state: State, sessions: Mapping[str, Any], now: int) -> Snapshot:
    """``sessions``: the connected agents by node name (their ``cpu_seconds``, where known)."""
    nodes, ces = _capacity(state)
    return Snapshot(
        taken_at=now,
        queue_jobs=queue_depth(state),
        waiting=wait_reasons(state),
        ces=ces,
        nodes=nodes,
        node_states=_node_states(state),
        last_heartbeat={
            (n.ce, n.name): n.last_heartbeat
            for n in state.nodes.values()
            if n.last_heartbeat is not None
        },
        cpu_used=_cpu_used(state, sessions),
    )


def queue_depth(state: State) -> dict[tuple[str, str], int]:
    counts = {(q, s.value): 0 for q in state.queues for s in QUEUE_STATUSES}
    for owner, by_status in state.listing.items():
        parent = None if owner in state.queues else state.jobs.get(owner)
        queue = owner if parent is None else parent.queue
        for status in QUEUE_STATUSES:
            bucket = by_status.get(status)
            if bucket:
                key = (queue, status.value)
                counts[key] = counts.get(key, 0) + len(bucket)
        if parent is not None and parent.status in QUEUE_STATUSES:
            # the parent of these jobs is listed under its queue: it follows them, not counted
            key = (parent.queue, parent.status.value)
            counts[key] = counts.get(key, 0) - 1
    return counts


def wait_reasons(state: State) -> dict[tuple[str, str], int]:
    counts = {(q, r): 0 for q in state.queues for r in REASONS}
    memo = Memo()  # queues on the same compute environments read their nodes once
    for name in state.queues:
        runnable = state.runnable.get(name)
        total = len(runnable) if runnable else 0
        whole = _queue_wide_reason(state, name)
        if whole is not None:
            counts[(name, whole)] += total
        elif runnable:
            head = list(runnable.islice(0, CLASSIFIED_PER_QUEUE))
            # a single job's class follows from its need (resources and consumables)
            by_need: dict[tuple[Resources, tuple[tuple[str, int], ...]], str] = {}
            for key in head:
                job = state.jobs.get(key[3])
                if job is None:
                    reason = "other"
                elif job.multinode is not None:
                    reason = classify(explain(state, job, memo=memo))
                else:
                    need = (job.spec.resources, job.spec.consumables)
                    reason = by_need.get(need) or by_need.setdefault(
                        need, classify(explain(state, job, memo=memo))
                    )
                counts[(name, reason)] += 1
            counts[(name, "capacity")] += total - len(head)
    for queue, waiting in _waiting_on_dependencies(state).items():
        counts[(queue, "dependency")] = counts.get((queue, "dependency"), 0) + waiting
    return counts


def classify(reason: str | None) -> str:
    """The class of an ``explain`` reason for a RUNNABLE job (one of ``REASONS``)."""
    text = reason or ""
    if text.startswith("queue disabled"):
        return "queue_disabled"
    if text.startswith("no ENABLED compute environment"):
        return "ce_disabled"
    if MISCONFIGURATION in text:
        return "misconfiguration"
    if text.startswith("waiting for nodes"):
        return "node_unavailable"
    shared = ("waiting for the machine", "waiting for compute environment")  # shared_capacity
    if text.startswith(("waiting for capacity", "reserved", 'share "', *shared)):
        return "capacity"  # a fair-share queue's job waits its share's turn for capacity
    if text.startswith("waiting for consumable resource"):
        return "consumable"
    return "other"


def _queue_wide_reason(state: State, name: str) -> str | None:
    queue = state.queues[name]
    if queue.state != "ENABLED":
        return "queue_disabled"
    if not any(c in state.ces and state.ces[c].state == "ENABLED" for c in queue.ce_order):
        return "ce_disabled"
    return None


def _waiting_on_dependencies(state: State) -> dict[str, int]:
    """PENDING jobs per queue that wait for a dependency (array children included)."""
    counts: dict[str, int] = {}
    for owner, by_status in state.listing.items():
        bucket = by_status.get(JobStatus.PENDING)
        if not bucket:
            continue
        parent = None if owner in state.queues else state.jobs.get(owner)
        queue = owner if parent is None else parent.queue
        waiting = sum(1 for job_id in bucket if _waits(state.jobs.get(job_id)))
        if waiting:
            counts[queue] = counts.get(queue, 0) + waiting
    return counts


def _waits(job: Job | None) -> bool:
    return job is not None and bool(job.waiting_on) and not job.is_array_parent


def _capacity(state: State) -> tuple[dict[tuple[str, str], Capacity], dict[str, Capacity]]:
    nodes: dict[tuple[str, str], Capacity] = {}
    ces: dict[str, list[float]] = {ce: [0.0] * 6 for ce in state.ces}
    for node in state.nodes.values():
        c, a = node.capacity, node.allocated
        row: Capacity = (
            c.cpu_milli / 1000,
            a.cpu_milli / 1000,
            c.memory_mib * MIB,
            a.memory_mib * MIB,
            c.gpus,
            a.gpus,
        )
        nodes[(node.ce, node.name)] = row
        total = ces.setdefault(node.ce, [0.0] * 6)
        for i, value in enumerate(row):
            total[i] += value
    return nodes, {
        ce: (t[0], t[1], int(t[2]), int(t[3]), int(t[4]), int(t[5])) for ce, t in ces.items()
    }


def _node_states(state: State) -> dict[tuple[str, str], int]:
    counts = {(ce, s): 0 for ce in state.ces for s in NODE_STATES}
    for node in state.nodes.values():
        key = (node.ce, node.state.value)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _cpu_used(state: State, sessions: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    used: dict[tuple[str, str], float] = {}
    for name, session in sessions.items():
        seconds = getattr(session, "cpu_seconds", None)
        node = state.nodes.get(name)
        if node is not None and isinstance(seconds, int | float) and not isinstance(seconds, bool):
            used[(node.ce, name)] = float(seconds)
    return used
