"""The timeout backstop: kill attempts well past their timeout, for agents that missed it.

An agent kills its own attempts at their timeout; the head kills, at each ``Tick``, any attempt
still running ``KILL_GRACE_MS`` after it. Reading every running attempt each second cost a
tick O(running): ~0.15 s with 100,000 attempts running (docs/benchmarks.md "Issue 15"). The
attempts with a timeout wait instead in a heap of ``(deadline, attempt id)``
(``State.overdue``), pushed as each starts, so a tick pops only what is due:

- an entry whose attempt has ended, or is no longer its job's live attempt, is dropped;
- an attempt already being killed (``kill_reason``) is looked at again next tick, as the scan
  did, since a gang's node may have its reason cleared while still running;
- the heap is not persisted: the first tick after a start builds it from the live attempts.
"""

from __future__ import annotations

import heapq

from hpcbatch.core import events as ev
from hpcbatch.core.commands import Command, KillAttempt
from hpcbatch.core.model import Attempt, Job, attempt_id, parse_attempt_id
from hpcbatch.core.retry import TIMEOUT_REASON
from hpcbatch.core.state import State

KILL_GRACE_MS = 30_000


def _deadline(job: Job, attempt: Attempt) -> int | None:
    limit = job.spec.timeout_s
    if limit is None or attempt.started_at is None:
        return None
    return attempt.started_at + limit * 1000 + KILL_GRACE_MS


def watch(state: State, job: Job, attempt: Attempt) -> None:
    """``attempt`` of ``job`` has started: kill it if it runs past its deadline."""
    deadline = _deadline(job, attempt)
    if state.overdue is not None and deadline is not None:
        heapq.heappush(state.overdue, (deadline, attempt_id(job.job_id, attempt.number)))


def _build(state: State) -> list[tuple[int, str]]:
    heap = []
    for node in state.nodes.values():
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            deadline = _deadline(job, job.attempts[-1]) if job and job.attempts else None
            if deadline is not None:
                heap.append((deadline, aid))
    heapq.heapify(heap)
    return heap


def kill_overdue(state: State, e: ev.Tick) -> list[Command]:
    if state.overdue is None:
        state.overdue = _build(state)
    heap = state.overdue
    commands: list[Command] = []
    again: list[tuple[int, str]] = []
    while heap and heap[0][0] < e.now:
        deadline, aid = heapq.heappop(heap)
        parsed = parse_attempt_id(aid)
        job = state.jobs.get(parsed[0]) if parsed is not None else None
        if job is None or parsed is None or not job.attempts:
            continue
        attempt = job.attempts[-1]
        node = state.nodes.get(attempt.node)
        live = attempt.number == parsed[1] and node is not None and aid in node.attempts
        if not live or _deadline(job, attempt) != deadline:
            continue
        if job.kill_reason is not None:
            again.append((deadline, aid))  # looked at again next tick
            continue
        job.kill_reason = TIMEOUT_REASON
        commands.append(
            KillAttempt(cause=e.cause, node=attempt.node, attempt_id=aid, reason=TIMEOUT_REASON)
        )
    for item in again:
        heapq.heappush(heap, item)
    return commands
