"""The front of a queue with quota shares, for GetJobQueueSnapshot: its RUNNABLE jobs in the
order the scheduler's quota pass would try them, each share's first job, and each share's use.

The order is the pass's (core/quota_pass.py, the same ``QuotaLedger`` and phases, so the two
cannot drift apart) with capacity to spare, each job as if placed: the jobs within their
share's quota in the queue's order (``schedulingPriority``, then submission), then those that
would borrow, then the jobs no share can start now (at their quota, nothing to borrow), in the
queue's order. The cost is O(shares + the jobs looked at): the scan stops at ``limit`` jobs or
once every share is closed, as the pass does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hpcbatch.core.model import Job, JobQueue
from hpcbatch.core.quota_pass import PHASES, SMALLEST, QuotaLedger, new_ledger
from hpcbatch.core.quotas import Amounts, ShareUse, amounts, job_need, over, plus, quota_of
from hpcbatch.core.state import RunnableKey, State


@dataclass(frozen=True, slots=True)
class ShareUsage:
    """One quota share's use in the units its limits name (VCPU in vCPUs), and the largest
    fraction of its quota that use is (over those units)."""

    name: str
    usage: tuple[tuple[str, float], ...]
    fraction: float


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    """GetJobQueueSnapshot's quota members: ``front`` (``frontOfQueue``), ``firsts``
    (``frontOfQuotaShares``, by share) and ``usage`` (``quotaShareUtilization``)."""

    front: list[Job]
    firsts: dict[str, Job]
    usage: list[ShareUsage]


def quota_snapshot(state: State, queue: JobQueue, limit: int = 100) -> QuotaSnapshot | None:
    """The three at once, the shares' use counted once (O(live attempts)); None: the queue has
    no quota shares."""
    ledger = new_ledger(state, queue, {})
    if ledger is None:
        return None
    ledger.preempts = False  # it only orders: a share at its quota is closed, as for any share
    fresh = _fresh(ledger)
    front = _front(state, queue, ledger, limit)
    return QuotaSnapshot(front, _firsts(state, queue, fresh, front), _usage(fresh))


def quota_front(state: State, queue: JobQueue, limit: int = 100) -> list[Job] | None:
    """The first ``limit`` RUNNABLE jobs of a queue with quota shares in dispatch order (None:
    the queue has no quota shares)."""
    ledger = new_ledger(state, queue, {})
    if ledger is None:
        return None
    ledger.preempts = False
    return _front(state, queue, ledger, limit)


def share_fronts(state: State, queue: JobQueue, front: list[Job]) -> dict[str, Job]:
    """Each quota share with RUNNABLE jobs: its first job in the queue's dispatch order. A share
    with a job in ``front`` (``quota_front``'s answer, a prefix of that order): its first there;
    any other: its first job within its quota, else its first that could borrow at the queue's
    present use (what the share would start first were no other share's job placed before it),
    else its first in its own order."""
    ledger = new_ledger(state, queue, {})
    return {} if ledger is None else _firsts(state, queue, ledger, front)


def share_usage(state: State, queue: JobQueue) -> list[ShareUsage]:
    """Every quota share of the queue with what its jobs hold now, in the units its limits
    name, the most used (the largest fraction of its quota) first, then by name."""
    ledger = new_ledger(state, queue, {})
    return [] if ledger is None else _usage(ledger)


def _fresh(ledger: QuotaLedger) -> QuotaLedger:
    """A ledger at the same use with nothing booked (the use is not recounted)."""
    return QuotaLedger(ledger.queue, ledger.uses, ledger.largest, ledger.waiting, ledger.jobs, {})


def _front(state: State, queue: JobQueue, ledger: QuotaLedger, limit: int) -> list[Job]:
    front: list[Job] = []
    for phase in PHASES:
        if len(front) >= limit:
            break
        ledger.start(phase)
        if ledger.all_closed():
            continue
        for key in ledger.order(state):
            job = state.jobs[key[3]]
            if ledger.admits(job):
                front.append(job)
                ledger.book(job, job_need(job, ledger.largest))
                if len(front) >= limit or ledger.all_closed():
                    break
    if len(front) < limit:  # the jobs that may not start now, in the queue's order
        for key in state.runnable.get(queue.name, ()):
            if key[3] not in ledger.placed:
                front.append(state.jobs[key[3]])
                if len(front) >= limit:
                    break
    return front


def _firsts(state: State, queue: JobQueue, ledger: QuotaLedger, front: list[Job]) -> dict[str, Job]:
    firsts: dict[str, Job] = {}
    for job in front:
        if job.share is not None:
            firsts.setdefault(job.share, job)
    for name, entry in ledger.uses.items():
        order = state.share_runnable.get(f"{queue.name}/{name}")
        if name in firsts or not order:
            continue
        firsts[name] = _first_of(state, ledger, entry, order) or state.jobs[order[0][3]]
    return firsts


def _first_of(
    state: State, ledger: QuotaLedger, entry: ShareUse, order: Iterable[RunnableKey]
) -> Job | None:
    """The share's first job within its quota, else its first that may borrow (None: neither).
    A need no smaller than one that failed is not tried again (use does not change here)."""
    quota = quota_of(entry.share)
    if not over(plus(entry.use, SMALLEST), quota):
        failed: list[Amounts] = []
        for key in order:
            job = state.jobs[key[3]]
            need = amounts(job_need(job, ledger.largest))
            if any(all(need[u] >= f[u] for u in f) for f in failed):
                continue
            if not over(plus(entry.use, need), quota):
                return job
            if len(failed) < 8:
                failed.append(need)
    if not ledger.may_borrow(entry, SMALLEST):
        return None
    ledger.phase, ledger.failed = PHASES[1], {}  # not ``start``: it would rank every share
    for key in order:
        job = state.jobs[key[3]]
        if ledger.admits(job):
            return job
    return None


def _usage(ledger: QuotaLedger) -> list[ShareUsage]:
    found: list[ShareUsage] = []
    for entry in ledger.uses.values():
        share = entry.share
        quota = quota_of(share)
        usage = tuple(
            (unit, entry.use.get(unit, 0) / 1000 if unit == "VCPU" else entry.use.get(unit, 0))
            for unit in share.limits
        )
        fraction = max(
            (
                entry.use.get(u, 0) / q if q else float(entry.use.get(u, 0) > 0)
                for u, q in quota.items()
            ),
            default=0.0,
        )
        found.append(ShareUsage(share.name, usage, fraction))
    found.sort(key=lambda s: (-s.fraction, s.name))
    return found
