"""A share's decayed usage: vCPU-seconds of its attempts, each second weighted by
``2 ** (-age / half_life)`` so that recent use counts most (see docs/fairshare.md).

The half-life is the policy's ``shareDecaySeconds``, or AWS's default window of 600 s when that
is 0. Each record also keeps the share's typical attempt run time (a moving average over its
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
from hpcbatch.core.shares import SchedulingPolicy, ShareUsage
from hpcbatch.core.state import State

DEFAULT_WINDOW_S = 600  # AWS: "A value of zero (0) indicates the default minimum time window"
RUN_AVERAGE = 8  # each ended attempt moves its share's typical run time 1/8 of the way to its own
DEFAULT_RUN_MS = 60_000  # the typical run time of a queue none of whose attempts has ended
_LN2 = math.log(2)


def half_life_ms(policy: SchedulingPolicy) -> int:
    return (policy.decay_s or DEFAULT_WINDOW_S) * 1000


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
    """Fold an ended attempt into its share's record; nothing for a FIFO queue's job or an
    attempt that never started."""
    queue = state.queues.get(job.queue)
    policy = state.policies.get(queue.policy or "") if queue is not None else None
    start, end = attempt.started_at, attempt.stopped_at
    if policy is None or job.share is None or start is None or end is None:
        return
    half = half_life_ms(policy)
    record = state.usage.get((job.queue, job.share))
    if record is None:
        record = state.usage[(job.queue, job.share)] = ShareUsage(0.0, end)
    at = max(record.as_of, end)
    record.value = decayed(record.value, at - record.as_of, half) + run_usage(
        attempt.cpu_milli, start, end, at, half
    )
    record.as_of = at
    ran = end - start
    if record.run_ms <= 0:
        record.run_ms = ran
    else:  # moving mean and variance (West's update with weight 1/RUN_AVERAGE)
        off = ran - record.run_ms
        record.run_ms += off / RUN_AVERAGE
        record.run_var = (1 - 1 / RUN_AVERAGE) * (record.run_var + off * off / RUN_AVERAGE)
    state.changes.touch("share_usage", usage_key(job.queue, job.share))


RunTime = tuple[float, float]  # a typical run time and its standard deviation, ms


def queue_run_time(state: State, queue: str) -> RunTime:
    """The typical run time (and deviation) for a share of ``queue`` with no ended attempt
    yet: the mean of its shares' (each its ``ShareUsage.run_ms``/``run_var``), else
    ``DEFAULT_RUN_MS`` varying by none: O(usage records)."""
    known = [u for (q, _), u in state.usage.items() if u.run_ms > 0 and q == queue]
    if not known:
        return DEFAULT_RUN_MS, 0.0
    n = len(known)
    return sum(u.run_ms for u in known) / n, sum(math.sqrt(u.run_var) for u in known) / n


@dataclass(slots=True)
class Running:
    """What one fair-share queue runs now: decayed vCPU-seconds per share so far, the vCPUs each
    share holds (a share holding any is *active*), and the queue's vCPUs in use in all."""

    usage: dict[str, float] = field(default_factory=dict)
    held: dict[str, int] = field(default_factory=dict)  # share -> cpu_milli
    used: int = 0  # cpu_milli
    started: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # (cpu_milli, at)


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
                part = run_usage(
                    attempt.cpu_milli, attempt.started_at, now, now, half_life_ms(policy)
                )
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
