"""The head's metrics registry: counters and histograms updated as batches commit, and the
collectors that read the last snapshot at scrape time.

Vocabulary: ``HeadMetrics`` is one head's registry (never the process-global one, so two heads
in one test process never mix). The loop calls ``batch_committed`` after each batch it commits
(on the loop thread: only there may the State be read), the API calls ``request_done``; the
scrape thread only calls the collectors, which read the last published ``Snapshot``, an
immutable object swapped in by one assignment. Every collector is guarded: one that raises is
logged and counted in ``hpcbatch_collector_errors_total{collector}``, and the scrape goes on
with what the others give.

Counters follow the journal lines of a committed batch: SUBMITTED (jobs that run: an array's
children, a multi-node job's nodes), STARTING (an attempt), RUNNING (queue wait, on a job's
first attempt), RUNNABLE after an attempt (a retry), SUCCEEDED/FAILED (finished, run time),
and the reason an attempt ended (timeout, host lost) from the retry or NOT_RETRIED detail.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from hpcbatch.core.model import Job, JobStatus
from hpcbatch.core.retry import TIMEOUT_REASON
from hpcbatch.core.state import State
from hpcbatch.metrics.snapshot import Snapshot, build_snapshot
from hpcbatch.store.base import JournalEntry

log = logging.getLogger("hpcbatch.metrics")

SNAPSHOT_EVERY_S = 0.2  # at most this often on a busy loop; a Tick batch comes each second
SNAPSHOT_SHARE = 0.1  # and at most this share of the loop's time: a snapshot reads every node
# and explains each queue's first waiting jobs, so it grows with the cluster
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOB_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 86400)
OUTCOMES = ("ok", "client_error", "server_error")


class _Guarded:
    """The head's collectors, each guarded: one that raises is logged and counted instead of
    failing the scrape; the error counter comes last, so a scrape counts its own failures."""

    def __init__(self, errors: Counter) -> None:
        self.errors = errors
        self.collectors: list[tuple[str, Any]] = []

    def add(self, name: str, collector: Any) -> None:
        self.errors.labels(name)
        self.collectors.append((name, collector))

    def collect(self) -> Iterator[Metric]:
        for name, collector in list(self.collectors):
            try:
                metrics = list(collector.collect())
            except Exception:
                log.exception("metrics collector %s failed; the scrape goes on without it", name)
                self.errors.labels(name).inc()
                continue
            yield from metrics
        yield from self.errors.collect()


class HeadMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.collector_errors = Counter(
            "hpcbatch_collector_errors",
            "Collectors that raised during a scrape",
            ["collector"],
            registry=None,  # collected by _Guarded, after the collectors it counts
        )
        self._guarded = _Guarded(self.collector_errors)
        r.register(self._guarded)
        self.submitted = Counter("hpcbatch_jobs_submitted", "Jobs submitted", ["queue"], registry=r)
        self.finished = Counter(
            "hpcbatch_jobs_finished", "Jobs finished", ["queue", "status"], registry=r
        )
        self.attempts = Counter("hpcbatch_attempts", "Attempts started", ["queue"], registry=r)
        self.retries = Counter("hpcbatch_job_retries", "Jobs retried", ["queue"], registry=r)
        self.timeouts = Counter(
            "hpcbatch_job_timeouts", "Attempts ended by their timeout", ["queue"], registry=r
        )
        self.host_lost = Counter(
            "hpcbatch_host_lost", "Attempts ended as Host lost", ["queue"], registry=r
        )
        self.requests = Counter(
            "hpcbatch_api_requests", "API requests", ["operation", "outcome"], registry=r
        )
        self.queue_wait = Histogram(
            "hpcbatch_job_queue_wait_seconds",
            "createdAt to startedAt of a job's first attempt",
            ["queue"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.run_time = Histogram(
            "hpcbatch_job_run_seconds",
            "Run time of a finished job's last attempt",
            ["queue"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.pass_time = Histogram(
            "hpcbatch_scheduling_pass_seconds",
            "One scheduling pass, plan applied",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.commit_time = Histogram(
            "hpcbatch_batch_commit_seconds",
            "Writing one batch to the store",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.dispatch_time = Histogram(
            "hpcbatch_dispatch_latency_seconds",
            "Sending a committed batch's commands to agents",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.request_time = Histogram(
            "hpcbatch_api_request_seconds",
            "API request duration",
            ["operation"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self._snapshot = Snapshot()
        self._built_at = 0.0
        self._build_every_s = SNAPSHOT_EVERY_S
        self._state: State | None = None
        self._sessions: Mapping[str, Any] = {}
        self._queues: set[str] = set()
        # label children by (metric, labels): ``labels()`` validates and locks on every call,
        # ~3 us, several times a job (docs/benchmarks.md "Issue 15"); children are never removed
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        # A batch's counts, added up before they reach the counters: one locked ``inc`` per
        # counter and queue a batch, not one per journal line (three lines a job).
        self._adds: collections.Counter[tuple[Any, tuple[str, ...]]] = collections.Counter()
        self.add_collector("snapshot", SnapshotCollector(self))
        self.add_collector("process", ProcessCollector(registry=None))
        self.add_collector("platform", PlatformCollector(registry=None))
        self.add_collector("gc", GCCollector(registry=CollectorRegistry()))

    def add_collector(self, name: str, collector: Any) -> None:
        self._guarded.add(name, collector)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- the loop thread ---------------------------------------------------------------------

    def attach(self, state: State, sessions: Mapping[str, Any]) -> None:
        """What ``refresh`` reads: the head's State and its agent sessions (loop thread only)."""
        self._state = state
        self._sessions = sessions

    def refresh(self, now_ms: int | None = None) -> None:
        """Build and publish a new snapshot now (loop thread only)."""
        if self._state is None:
            return
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        self._built_at = time.monotonic()
        try:
            self._snapshot = build_snapshot(self._state, self._sessions, now)
            took = time.monotonic() - self._built_at
            self._build_every_s = max(SNAPSHOT_EVERY_S, took / SNAPSHOT_SHARE)
        except Exception:  # the last snapshot stays; the loop goes on
            log.exception("metrics: building the snapshot failed")
            self.collector_errors.labels("loop").inc()

    def batch_committed(
        self, journal: Iterable[JournalEntry], pass_s: float | None, commit_s: float | None
    ) -> None:
        """After a batch is durable: count its journal lines, time it, maybe publish a snapshot.
        Never raises: metrics must not stop the loop."""
        try:
            if pass_s is not None:
                self.pass_time.observe(pass_s)
            if commit_s is not None:
                self.commit_time.observe(commit_s)
            if self._state is not None:
                self._count(self._state, journal)
                if time.monotonic() - self._built_at >= self._build_every_s:
                    self.refresh()
        except Exception:
            log.exception("metrics: counting a batch failed")
            self.collector_errors.labels("loop").inc()

    def commands_sent(self, seconds: float) -> None:
        self.dispatch_time.observe(seconds)

    def request_done(self, operation: str, status: int, seconds: float) -> None:
        outcome = OUTCOMES[0] if status < 400 else OUTCOMES[1] if status < 500 else OUTCOMES[2]
        self._child(self.requests, operation, outcome).inc()
        self._child(self.request_time, operation).observe(seconds)

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _count(self, state: State, journal: Iterable[JournalEntry]) -> None:
        for name in state.queues.keys() - self._queues:
            self._queues.add(name)
            for metric in (self.submitted, self.attempts, self.retries, self.timeouts):
                metric.labels(name)
            self.host_lost.labels(name)
            self.finished.labels(name, "SUCCEEDED")
            self.finished.labels(name, "FAILED")
        for line in journal:
            handler = _HANDLERS.get(line.event)
            if handler is not None:
                job = state.jobs.get(line.subject)
                if job is not None:
                    handler(self, job, line)
        adds, self._adds = self._adds, collections.Counter()
        for (metric, values), amount in adds.items():
            self._child(metric, *values).inc(amount)

    def _add(self, metric: Any, *values: str, amount: int = 1) -> None:
        self._adds[(metric, values)] += amount

    def _on_submitted(self, job: Job, line: JournalEntry) -> None:
        if job.array_size is not None:
            self._add(self.submitted, job.queue, amount=job.array_size)
        elif job.multinode is not None:
            self._add(self.submitted, job.queue, amount=job.multinode.num_nodes)
        else:
            self._add(self.submitted, job.queue)

    def _on_starting(self, job: Job, line: JournalEntry) -> None:
        self._add(self.attempts, job.queue)

    def _on_running(self, job: Job, line: JournalEntry) -> None:
        if len(job.attempts) == 1 and job.attempts[0].started_at is not None:
            wait = (job.attempts[0].started_at - job.created_at) / 1000
            self._child(self.queue_wait, job.queue).observe(max(0.0, wait))

    def _on_runnable(self, job: Job, line: JournalEntry) -> None:
        if line.detail.startswith(("attempt ", "gang attempt ")):
            self._add(self.retries, job.queue)
            self._attempt_ended(job, line.detail)

    def _on_not_retried(self, job: Job, line: JournalEntry) -> None:
        self._attempt_ended(job, line.detail)

    def _attempt_ended(self, job: Job, detail: str) -> None:
        if TIMEOUT_REASON in detail:
            self._add(self.timeouts, job.queue)
        if "Host lost" in detail:
            self._add(self.host_lost, job.queue)

    def _on_finished(self, job: Job, line: JournalEntry) -> None:
        if job.array_size is not None or job.multinode is not None:
            return  # its children or nodes are counted
        self._add(self.finished, job.queue, line.event)
        last = job.attempts[-1] if job.attempts else None
        if last is not None and last.started_at is not None and last.stopped_at is not None:
            self._child(self.run_time, job.queue).observe(
                max(0, last.stopped_at - last.started_at) / 1000
            )


_HANDLERS: dict[str, Callable[[HeadMetrics, Job, JournalEntry], None]] = {
    "SUBMITTED": HeadMetrics._on_submitted,
    JobStatus.STARTING.value: HeadMetrics._on_starting,
    JobStatus.RUNNING.value: HeadMetrics._on_running,
    JobStatus.RUNNABLE.value: HeadMetrics._on_runnable,
    "NOT_RETRIED": HeadMetrics._on_not_retried,
    JobStatus.SUCCEEDED.value: HeadMetrics._on_finished,
    JobStatus.FAILED.value: HeadMetrics._on_finished,
}

_CAPACITY = (
    ("vcpus", "vCPUs offered"),
    ("vcpus_allocated", "vCPUs allocated to attempts"),
    ("memory_bytes", "Memory offered"),
    ("memory_allocated_bytes", "Memory allocated to attempts"),
    ("gpus", "GPUs offered"),
    ("gpus_allocated", "GPUs allocated to attempts"),
)


class SnapshotCollector:
    """The gauges (and the agents' CPU counter) of the last published snapshot."""

    def __init__(self, metrics: HeadMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        s = self.metrics.snapshot  # one read: the whole scrape sees one snapshot
        now = time.time()  # heartbeat ages are of the scrape, not of the snapshot
        yield _gauge(
            "hpcbatch_queue_jobs", "Jobs per queue and status", ["queue", "status"], s.queue_jobs
        )
        yield _gauge(
            "hpcbatch_queue_runnable_jobs_by_reason",
            "Waiting jobs per queue by why they wait (docs/metrics.md)",
            ["queue", "reason"],
            s.waiting,
        )
        for i, (suffix, text) in enumerate(_CAPACITY):
            yield _gauge(
                f"hpcbatch_ce_{suffix}",
                f"{text}, per compute environment",
                ["ce"],
                {(ce,): row[i] for ce, row in s.ces.items()},
            )
        for i, (suffix, text) in enumerate(_CAPACITY):
            yield _gauge(
                f"hpcbatch_node_{suffix}",
                f"{text}, per node",
                ["ce", "node"],
                {key: row[i] for key, row in s.nodes.items()},
            )
        yield _gauge(
            "hpcbatch_nodes",
            "Nodes per compute environment and state",
            ["ce", "state"],
            s.node_states,
        )
        yield _gauge(
            "hpcbatch_node_heartbeat_age_seconds",
            "Seconds since the node's last heartbeat",
            ["ce", "node"],
            {key: max(0.0, now - at / 1000) for key, at in s.last_heartbeat.items()},
        )
        used = CounterMetricFamily(
            "hpcbatch_node_cpu_used_seconds",
            "CPU seconds used by the node's jobs, from its agent (since that agent started)",
            labels=["ce", "node"],
        )
        for key, value in s.cpu_used.items():
            used.add_metric(list(key), value)
        yield used


def _gauge(
    name: str, text: str, labels: list[str], values: Mapping[Any, float]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=labels)
    for key, value in values.items():
        family.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return family
