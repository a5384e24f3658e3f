"""The dispatch order of a fair-share queue, shared by the scheduler, GetJobQueueSnapshot and
``explain`` so all three tell the same story (docs/fairshare.md).

A share's **value** is ``(usage + ahead + placed) * weight factor``: usage is its decayed
vCPU-seconds (core/usage.py), ahead what its running attempts are expected to add still (each
``vCPUs * (typical run time - its age)``, none once past it), placed what the jobs this pass
placed for it are expected to add (``vCPUs * typical run time`` each). The typical run time is
the share's moving average of its ended attempts' (core/usage.py), capped by a job's timeout.

Shares are served lowest **bid** first. A share's bid for its next job, expected to add
``J = vCPUs * typical run time * weight factor`` to a value ``V``, is ``J / ln(1 + J / V)``:
the mean its value would have over the cycle that job starts, if the share's next job after it
came when its decayed value had fallen back to ``V`` (the value decays as ``e^(-t/T)``, so the
cycle lasts ``T ln(1 + J/V)`` and its mean is ``J T / that``). Comparing those means, not the
values now, is what lets a share due less than one job at a time get what it is due: its value
jumps by a whole job and decays between its jobs, and the time-average of decayed usage is what
sets the long run (it is ``T`` times the share's average vCPUs). For ``J`` small beside ``V``
the bid is about ``V + J/2``; a share with no usage bids 0. Run times vary, and a job of
unknown length ends the cycle sooner on average than one of the typical length (the logarithm is
concave), so the bid divides by ``E[ln(1 + J/V)]`` to second order in the share's run-time
spread (``ShareStanding.bid``). Ties go to the share whose next job is older. Within a share jobs go by ``schedulingPriority`` (higher first), then submission order
(``state.fair_runnable``). docs/fairshare.md "How close the long run gets" has the numbers.

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
from hpcbatch.core.usage import (
    DEFAULT_WINDOW_S,
    MEMORY_RUNS,
    Running,
    half_life_ms,
    queue_run_time,
    running_by_queue,
    share_usage,
)


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


@dataclass(slots=True)
class ShareStanding:
    share: str
    usage: float  # decayed vCPU-seconds
    held: float  # vCPUs running at the start of the pass
    ahead: float  # vCPU-seconds its running attempts are expected to add still
    run_s: float  # its typical attempt run time
    run_sd: float  # how much its attempts' run times vary about that (standard deviation)
    weight_e4: int
    placed: float = 0.0  # vCPU-seconds the jobs this pass placed are expected to add

    @property
    def value(self) -> float:
        return (self.usage + self.ahead + self.placed) * self.weight_e4 / 10000

    def bid(self, vcpus: float, run_s: float) -> float:
        """What the share is compared by for a next job of ``vcpus`` running ``run_s``: the
        mean value over the cycle the job starts, ``E[J] / E[ln(1 + J / value)]``, the
        expectation over run times of mean ``run_s`` and deviation ``run_sd`` to second order
        (a job of unknown length ends the cycle sooner on average than one of the mean length:
        the logarithm is concave)."""
        value = self.value
        if value <= 0:
            return 0.0
        scale = vcpus * self.weight_e4 / 10000 / value
        x = scale * run_s
        if x <= 0:
            return value
        sd = self.run_sd
        spread = scale * (sd if sd < run_s else run_s)
        log = math.log1p(x)
        cut = spread * spread / (2 * (1 + x) * (1 + x))
        return x * value / (log - cut if cut < log / 2 else log / 2)


class FairOrder:
    """A fair-share queue's RUNNABLE jobs in dispatch order. Iterate; after a job is placed
    call ``placed(job)`` before taking the next, or ``refuse(share)`` to skip its share."""

    def __init__(self, state: State, queue: JobQueue, now: int, running: Running | None) -> None:
        policy = state.policies[queue.policy or ""]
        self.state, self.queue, self.policy = state, queue, policy
        self.running = running = running if running is not None else Running()
        self.max_cpu = queue_cpu_milli(state, queue)
        self.used = self.running.used
        self.active = {s for s, held in self.running.held.items() if held > 0}
        self.refused: set[str] = set()
        self.standing: dict[str, ShareStanding] = {}
        weights = Weights(policy)
        self.half_ms = half = half_life_ms(state, queue.name, policy)
        self.shares = state.fair_runnable.get(queue.name, {})
        fallback = queue_run_time(state, queue.name)  # for shares with no ended attempt yet
        records, name = state.usage, queue.name
        held_by, started = running.held, running.started
        heap: list[tuple[float, RunnableKey, str, int]] = []
        for share, keys in self.shares.items():  # per share: kept lean (1,000 shares a pass)
            usage = share_usage(state, name, share, now, running, half)
            record = records.get((name, share))
            if record is not None and record.run_ms > 0:
                run_ms, sd_ms = record.run_ms, math.sqrt(record.run_var)
            else:
                run_ms, sd_ms = fallback
            ahead = 0.0
            if share in started:  # vCPU-ms to come: cpu_milli * ms / 1e6 is vCPU-s
                ahead = sum(cpu * max(run_ms - (now - at), 0) for cpu, at in started[share]) / 1e6
            held = held_by.get(share, 0) / 1000
            weight = weights.of(share)
            standing = ShareStanding(share, usage, held, ahead, run_ms / 1000, sd_ms / 1000, weight)
            self.standing[share] = standing
            first = keys[0]
            heap.append((self.bid(standing, first), first, share, 0))
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
        """What a share's next job is compared by (``ShareStanding.bid``)."""
        job = self.state.jobs[key[3]]
        return standing.bid(job_cpu_milli(job) / 1000, _run_s(standing, job))

    def placed(self, job: Job) -> None:
        assert job.share is not None
        cpu = job_cpu_milli(job)
        standing = self.standing[job.share]
        standing.placed += cpu / 1000 * _run_s(standing, job)
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


def _run_s(standing: ShareStanding, job: Job) -> float:
    """How long ``job`` is expected to run: its share's typical run time, within its timeout."""
    timeout = job.spec.timeout_s
    return standing.run_s if timeout is None else min(standing.run_s, float(timeout))


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
        f"{_memory(order)}"
    )


def _memory(order: FairOrder) -> str:
    """Where the half-life in effect is longer than ``shareDecaySeconds``, why (docs/fairshare.md
    "The half-life in effect")."""
    half_s, set_s = order.half_ms // 1000, order.policy.decay_s or DEFAULT_WINDOW_S
    if half_s <= set_s:
        return ""
    run_s = queue_run_time(order.state, order.queue.name)[0] / 1000
    return (
        f"; usage decays with a half-life of {half_s} s, {MEMORY_RUNS} of the queue's typical "
        f"run time (~{run_s:.0f} s), not shareDecaySeconds {set_s}: a shorter memory would not "
        "hold shares to their weights"
    )


def _standing(s: ShareStanding, bid: float) -> str:
    """``usage 52.2 vCPU-s, 1 vCPU running (36 vCPU-s more expected), jobs ~60 s, weight
    factor 1: priority 917.8``."""
    ahead = f" ({s.ahead:.0f} vCPU-s more expected)" if s.ahead > 0 else ""
    return (
        f"usage {s.usage:.1f} vCPU-s, {s.held:g} vCPU{'' if s.held == 1 else 's'} running"
        f"{ahead}, jobs ~{s.run_s:.0f} s, weight factor {s.weight_e4 / 10000:g}: "
        f"priority {bid:.1f}"
    )
