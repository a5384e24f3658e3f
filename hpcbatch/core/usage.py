"""A share's decayed usage: vCPU-seconds of its attempts, each second weighted by
``2 ** (-age / half_life)`` so that recent use counts most (see docs/fairshare.md).

The half-life is the policy's ``shareDecaySeconds`` (AWS's default window of 600 s when that is
0), but never under ``MEMORY_RUNS`` of the queue's typical attempt run time: a memory of fewer
jobs than that cannot hold shares to their weights (docs/fairshare.md "The half-life in
effect"). Each record also keeps the share's typical attempt run time (a moving average over its
ended attempts, ``RUN_AVERAGE``), which the fair-share order uses to foresee what a job will
add (core/fairshare.py). Usage is a pure function of the attempts' start and stop times and ``now``: the part from
ended attempts is folded into one ``ShareUsage`` record per ``(queue, share)`` when each attempt
ends (persisted as kind ``share_usage``, so a restart changes nothing), and running attempts are
added from their start up to ``now`` whenever usage is asked for. Never the wall clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hpcbatch.core.model import Attempt, Job
from hpcbatch.core.shares import QueueRunTime, SchedulingPolicy, ShareUsage
from hpcbatch.core.state import State

DEFAULT_WINDOW_S = 600  # AWS: "A value of zero (0) indicates the default minimum time window"
RUN_AVERAGE = 8  # each ended attempt moves its share's typical run time 1/8 of the way to its own
QUEUE_RUN_AVERAGE = 256  # and its queue's 1/256 (the mean of the first 256): it sets the half-life
DEFAULT_RUN_MS = 60_000  # the typical run time of a queue none of whose attempts has ended
MEMORY_RUNS = 20  # the half-life in effect is at least this many of the queue's typical run time
MAX_WINDOW_S = 604_800  # AWS's largest shareDecaySeconds: the half-life in effect never exceeds it
_LN2 = math.log(2)


def half_life_ms(state: State, queue: str, policy: SchedulingPolicy) -> int:
    """The half-life ``queue``'s usage decays with: ``shareDecaySeconds`` (600 s when 0), or
    ``MEMORY_RUNS`` of the queue's typical run time where that is longer (whole seconds, at
    most ``MAX_WINDOW_S``). O(1)."""
    run_ms, _ = queue_run_time(state, queue)
    floor_s = min(round(MEMORY_RUNS * run_ms / 1000), MAX_WINDOW_S)
    return max(policy.decay_s or DEFAULT_WINDOW_S, floor_s) * 1000


def decayed(value: float, age_ms: int, half_ms: int) -> float:
    """``value`` measured ``age_ms`` ago, as it counts now."""
    return value * math.exp2(-age_ms / half_ms) if age_ms > 0 else value


def run_usage(cpu_milli: int, start: int, end: int, at: int, half_ms: int) -> float:
    """Decayed vCPU-seconds, as of ``at``, of ``cpu_milli`` held from ``start`` to ``end``:
    the integral of ``vcpus * 2 ** (-(at - t) / half)`` over ``t`` in [start, end]."""
    if end <= start:
        return 0.0
    tau_s = half_ms / 1000 / _LN2
    newer = math.exp2(-max(at - end, 0) / half_ms)
    older = math.exp2(-max(at - start, 0) / half_ms)
    return cpu_milli / 1000 * tau_s * (newer - older)


def usage_key(queue: str, share: str) -> str:
    """The store key of a ``share_usage`` record (names and identifiers hold no ``/``)."""
    return f"{queue}/{share}"


def record_attempt(state: State, job: Job, attempt: Attempt) -> None:
    """Fold an ended attempt into its share's record (its run time first, then its usage with
    the half-life in effect once that counts); nothing for a FIFO queue's job or an attempt
    that never started."""
    queue = state.queues.get(job.queue)
    policy = state.policies.get(queue.policy or "") if queue is not None else None
    start, end = attempt.started_at, attempt.stopped_at
    if policy is None or job.share is None or start is None or end is None:
        return
    record = state.usage.get((job.queue, job.share))
    if record is None:
        record = state.usage[(job.queue, job.share)] = ShareUsage(0.0, end)
    ran = end - start
    if record.run_ms <= 0:
        record.run_ms = ran
    else:
        record.run_ms, record.run_var = _averaged(record.run_ms, record.run_var, ran, RUN_AVERAGE)
    queue_run = state.run_times.get(job.queue)
    if queue_run is None:
        queue_run = state.run_times[job.queue] = QueueRunTime()
    queue_run.count = min(queue_run.count + 1, QUEUE_RUN_AVERAGE)
    queue_run.run_ms, queue_run.run_var = _averaged(
        queue_run.run_ms, queue_run.run_var, ran, queue_run.count
    )
    state.changes.touch("queue_run_time", job.queue)
    half = half_life_ms(state, job.queue, policy)  # in effect once this attempt counts
    at = max(record.as_of, end)
    record.value = decayed(record.value, at - record.as_of, half) + run_usage(
        attempt.cpu_milli, start, end, at, half
    )
    record.as_of = at
    state.changes.touch("share_usage", usage_key(job.queue, job.share))


RunTime = tuple[float, float]  # a typical run time and its standard deviation, ms


def _averaged(mean: float, var: float, ran: float, n: int) -> tuple[float, float]:
    """A moving mean and variance moved ``1/n`` of the way to ``ran`` (West's update; with
    ``n`` the count so far, the exact mean and population variance)."""
    off = ran - mean
    return mean + off / n, (1 - 1 / n) * (var + off * off / n)


def queue_run_time(state: State, queue: str) -> RunTime:
    """The typical run time (and deviation) of ``queue``'s attempts (``QueueRunTime``), else
    ``DEFAULT_RUN_MS`` varying by none. A share with no ended attempt yet is taken to run this.
    O(1)."""
    run = state.run_times.get(queue)
    if run is None or run.count <= 0:
        return DEFAULT_RUN_MS, 0.0
    return run.run_ms, math.sqrt(run.run_var)


@dataclass(slots=True)
class Running:
    """What one fair-share queue runs now: decayed vCPU-seconds per share so far, the vCPUs each
    share holds (a share holding any is *active*), and the queue's vCPUs in use in all."""

    usage: dict[str, float] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # share -> cpu_milli
    used: int = 0  # cpu_milli
    started: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # (cpu_milli, at)
    half_ms: int = 0  # the queue's half-life in effect (``half_life_ms``), once asked for


def running_by_queue(state: State, now: int) -> dict[str, Running]:
    """``Running`` of every fair-share queue, from the attempts on the nodes: O(running)."""
    found: dict[str, Running] = {}
    for node in state.nodes.values():
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is None or job.share is None or not job.attempts:
                continue
            queue = state.queues.get(job.queue)
            policy = state.policies.get(queue.policy or "") if queue is not None else None
            if policy is None:
                continue
            attempt = job.attempts[-1]
            run = found.get(job.queue)
            if run is None:
                run = found[job.queue] = Running()
            run.used += attempt.cpu_milli
            run.held[job.share] = run.held.get(job.share, 0) + attempt.cpu_milli
            if attempt.started_at is not None:
                if run.half_ms == 0:
                    run.half_ms = half_life_ms(state, job.queue, policy)
                part = run_usage(attempt.cpu_milli, attempt.started_at, now, now, run.half_ms)
                run.usage[job.share] = run.usage.get(job.share, 0.0) + part
                run.started.setdefault(job.share, []).append(
                    (attempt.cpu_milli, attempt.started_at)
                )
    return found


def share_usage(
    state: State, queue: str, share: str, now: int, running: Running | None, half_ms: int
) -> float:
    """The share's decayed vCPU-seconds as of ``now``: ended attempts plus running ones."""
    record = state.usage.get((queue, share))
    ended = 0.0 if record is None else decayed(record.value, now - record.as_of, half_ms)
    return ended + (running.usage.get(share, 0.0) if running is not None else 0.0)
