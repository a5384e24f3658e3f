"""The dispatch order of a fair-share queue, shared by the scheduler, GetJobQueueSnapshot and
``explain`` so all three tell the same story (docs/fairshare.md).

Shares are served lowest *priority value* first:
``(usage + (held / 4 + placed / 2) * H / ln 2) * weight factor``, where usage is the share's
decayed vCPU-seconds (core/usage.py), H the policy's half-life, held the vCPUs its jobs hold at
the start of the pass and placed those the pass has placed for it so far. ``H / ln 2`` is what
one vCPU held for ever adds to decayed usage, so running jobs count at once, in the same unit,
and one pass interleaves shares by weight instead of handing all free capacity to whichever share
was behind; past usage, the integral of what each share got, settles the long run (the weights
on held and placed were measured: docs/fairshare.md). Ties go to the share whose next job is
older. Within a share jobs go by ``schedulingPriority`` (higher first), then submission order
(``state.fair_runnable``).

``computeReservation`` keeps ``(computeReservation/100) ** ActiveFairShares`` of the queue's
vCPUs (its compute environments' nodes) for shares with no job running: a share's job is placed
only if the queue's vCPUs in use, with it, stay within the rest. A refused share is skipped for
the rest of the pass.

Cost: O(shares with RUNNABLE jobs) to start (a heap), then O(log shares) per job yielded.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass

from hpcbatch.core.model import Job, JobQueue
from hpcbatch.core.policies import Weights
from hpcbatch.core.shares import SchedulingPolicy
from hpcbatch.core.state import RunnableKey, State
from hpcbatch.core.usage import Running, half_life_ms, running_by_queue, share_usage


def job_cpu_milli(job: Job) -> int:
    """The vCPUs (thousandths) a job holds when it runs; a multi-node job's whole gang."""
    shape = job.multinode
    if shape is None:
        return job.spec.resources.cpu_milli
    return sum((r.last - r.first + 1) * r.spec.resources.cpu_milli for r in shape.ranges)


def queue_cpu_milli(state: State, queue: JobQueue) -> int:
    """The queue's maximum vCPUs: the capacity of its compute environments' nodes."""
    ces = set(queue.ce_order)
    return sum(n.capacity.cpu_milli for n in state.nodes.values() if n.ce in ces)


# What the held vCPUs count for in the priority value, in units of H / ln 2 per vCPU: those
# running at the start of the pass, those the pass placed, and the next job's (FairOrder.bid).
HELD_WEIGHT = 0.25
PLACED_WEIGHT = 0.5
BID_SHARE = 0.25


@dataclass(slots=True)
class ShareStanding:
    share: str
    usage: float  # decayed vCPU-seconds
    held: float  # vCPUs running at the start of the pass
    tau_s: float  # H / ln 2: what one vCPU held for ever adds to decayed usage
    weight_e4: int
    placed: float = 0.0  # vCPUs this pass has placed

    @property
    def value(self) -> float:
        return self.value_with(0.0)

    def value_with(self, vcpus: float) -> float:
        """The priority value with ``vcpus`` of a next job counted (as ``BID_SHARE``)."""
        load = HELD_WEIGHT * self.held + PLACED_WEIGHT * self.placed + BID_SHARE * vcpus
        return (self.usage + load * self.tau_s) * self.weight_e4 / 10000


class FairOrder:
    """A fair-share queue's RUNNABLE jobs in dispatch order. Iterate; after a job is placed
    call ``placed(job)`` before taking the next, or ``refuse(share)`` to skip its share."""

    def __init__(self, state: State, queue: JobQueue, now: int, running: Running | None) -> None:
        policy = state.policies[queue.policy or ""]
        self.state, self.queue, self.policy = state, queue, policy
        self.running = running if running is not None else Running()
        self.max_cpu = queue_cpu_milli(state, queue)
        self.used = self.running.used
        self.active = {s for s, held in self.running.held.items() if held > 0}
        self.refused: set[str] = set()
        self.standing: dict[str, ShareStanding] = {}
        weights = Weights(policy)
        half = half_life_ms(policy)
        tau_s = half / 1000 / math.log(2)
        self.shares = state.fair_runnable.get(queue.name, {})
        heap: list[tuple[float, RunnableKey, str, int]] = []
        for share, keys in self.shares.items():
            usage = share_usage(state, queue.name, share, now, self.running, half)
            held = self.running.held.get(share, 0) / 1000
            standing = ShareStanding(share, usage, held, tau_s, weights.of(share))
            self.standing[share] = standing
            heap.append((self.bid(standing, keys[0]), keys[0], share, 0))
        heapq.heapify(heap)
        self.heap = heap

    def __iter__(self) -> Iterator[Job]:
        heap, jobs = self.heap, self.state.jobs
        while heap:
            _, key, share, position = heapq.heappop(heap)
            yield jobs[key[3]]
            keys = self.shares[share]
            if share not in self.refused and position + 1 < len(keys):
                following = keys[position + 1]
                value = self.bid(self.standing[share], following)
                heapq.heappush(heap, (value, following, share, position + 1))

    def bid(self, standing: ShareStanding, key: RunnableKey) -> float:
        """What a share's next job is compared by: its value with that job's vCPUs counted."""
        return standing.value_with(job_cpu_milli(self.state.jobs[key[3]]) / 1000)

    def placed(self, job: Job) -> None:
        assert job.share is not None
        cpu = job_cpu_milli(job)
        self.standing[job.share].placed += cpu / 1000
        self.used += cpu
        self.active.add(job.share)

    def refuse(self, share: str) -> None:
        self.refused.add(share)

    def reserved_cpu(self, share: str) -> int:
        """The vCPUs (thousandths) kept back if ``share`` ran a job: 0 without a reservation."""
        if self.policy.reservation == 0:
            return 0
        active = len(self.active | {share})
        return int(self.max_cpu * (self.policy.reservation / 100) ** active)

    def allows(self, job: Job) -> bool:
        """computeReservation: may ``job``'s share take its vCPUs now?"""
        assert job.share is not None
        reserved = self.reserved_cpu(job.share)
        return reserved == 0 or self.used + job_cpu_milli(job) <= self.max_cpu - reserved


def front_of_queue(
    state: State, queue: JobQueue, now: int, running: Running | None, limit: int = 100
) -> list[Job]:
    """The first ``limit`` RUNNABLE jobs in the order a pass would place them with capacity to
    spare (each as if placed); a FIFO queue's are its runnable order."""
    if queue.policy is None:
        keys = state.runnable.get(queue.name)
        return [] if keys is None else [state.jobs[k[3]] for k in keys.islice(0, limit)]
    order = FairOrder(state, queue, now, running)
    jobs: list[Job] = []
    for job in order:
        if len(jobs) >= limit:
            break
        jobs.append(job)
        order.placed(job)
    return jobs


def policy_of(state: State, queue: JobQueue) -> SchedulingPolicy | None:
    return state.policies.get(queue.policy) if queue.policy is not None else None


def _latest_time(state: State, queue: JobQueue) -> int:
    """When ``now`` is not given (metrics, time limits): the latest time the queue's usage
    knows of (an attempt's end or start), so the answer is still a pure function of the state."""
    times = [u.as_of for (q, _), u in state.usage.items() if q == queue.name]
    for node in state.nodes.values():
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is not None and job.queue == queue.name and job.attempts:
                times.append(job.attempts[-1].started_at or 0)
    return max(times, default=0)


@dataclass(slots=True)
class Ranking:
    """A fair-share queue's shares as a pass would start ranking them: each share's bid for its
    next job, and the share served first. One per queue answers ``explain`` for all its jobs."""

    order: FairOrder
    bids: dict[str, float]
    first: str | None


def rank(state: State, queue: JobQueue, now: int | None) -> Ranking:
    at = _latest_time(state, queue) if now is None else now
    order = FairOrder(state, queue, at, running_by_queue(state, at).get(queue.name))
    bids = {s: order.bid(standing, order.shares[s][0]) for s, standing in order.standing.items()}
    first = min(bids, key=lambda s: (bids[s], order.shares[s][0])) if bids else None
    return Ranking(order, bids, first)


def fair_share_reason(
    state: State, job: Job, now: int | None, rankings: dict[str, Ranking] | None = None
) -> str | None:
    """Why a RUNNABLE job of a fair-share queue waits for other shares, with the numbers; None
    when its share is first in line (or the queue is FIFO). ``rankings``: a cache by queue for
    many jobs asked at once (ListJobs): ranking 1,000 shares costs milliseconds."""
    queue = state.queues[job.queue]
    if queue.policy is None or job.share is None:
        return None
    ranking = rankings.get(queue.name) if rankings is not None else None
    if ranking is None:
        ranking = rank(state, queue, now)
        if rankings is not None:
            rankings[queue.name] = ranking
    order, bids = ranking.order, ranking.bids
    mine = order.standing.get(job.share)
    if mine is None or ranking.first is None:
        return None
    first = order.standing[ranking.first]
    if order.reserved_cpu(job.share) and not order.allows(job):
        kept = order.reserved_cpu(job.share)
        return (
            f'share "{job.share}" waits for computeReservation {order.policy.reservation}: '
            f"{kept / 1000:g} of the queue's {order.max_cpu / 1000:g} vCPUs are kept for shares "
            f"with no running job ({len(order.active)} active, {order.used / 1000:g} vCPUs in use)"
        )
    if first.share == job.share:
        return None
    return (
        f'share "{job.share}" is over its fair share: {_standing(mine, bids[mine.share])} vs '
        f'"{first.share}" {_standing(first, bids[first.share])}, served first'
    )


def _standing(s: ShareStanding, bid: float) -> str:
    """``usage 52.2 vCPU-s, 1 vCPU running, weight factor 1: priority 917.8``."""
    return (
        f"usage {s.usage:.1f} vCPU-s, {s.held:g} vCPU{'' if s.held == 1 else 's'} running, "
        f"weight factor {s.weight_e4 / 10000:g}: priority {bid:.1f}"
    )
