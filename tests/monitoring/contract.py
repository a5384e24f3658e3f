"""The series the head exports (docs/metrics.md; issue 11's contract between exporter and
dashboards): a panel or an alert naming anything else would show nothing, silently."""

from __future__ import annotations

import re

GAUGES = {
    "hpcbatch_queue_jobs",
    "hpcbatch_queue_runnable_jobs_by_reason",
    "hpcbatch_ce_vcpus",
    "hpcbatch_ce_vcpus_allocated",
    "hpcbatch_ce_memory_bytes",
    "hpcbatch_ce_memory_allocated_bytes",
    "hpcbatch_ce_gpus",
    "hpcbatch_ce_gpus_allocated",
    "hpcbatch_node_vcpus",
    "hpcbatch_node_vcpus_allocated",
    "hpcbatch_node_memory_bytes",
    "hpcbatch_node_memory_allocated_bytes",
    "hpcbatch_node_gpus",
    "hpcbatch_node_gpus_allocated",
    "hpcbatch_nodes",
    "hpcbatch_node_heartbeat_age_seconds",
}
COUNTERS = {
    "hpcbatch_node_cpu_used_seconds_total",
    "hpcbatch_jobs_submitted_total",
    "hpcbatch_jobs_finished_total",
    "hpcbatch_attempts_total",
    "hpcbatch_job_retries_total",
    "hpcbatch_job_timeouts_total",
    "hpcbatch_host_lost_total",
    "hpcbatch_api_requests_total",
    "hpcbatch_collector_errors_total",
}
HISTOGRAMS = {
    "hpcbatch_job_queue_wait_seconds",
    "hpcbatch_job_run_seconds",
    "hpcbatch_scheduling_pass_seconds",
    "hpcbatch_batch_commit_seconds",
    "hpcbatch_dispatch_latency_seconds",
    "hpcbatch_api_request_seconds",
}
# prometheus-client's process collector and Prometheus' own per-target series.
OTHERS = {"process_cpu_seconds_total", "process_resident_memory_bytes", "up"}

SERIES = (
    GAUGES
    | COUNTERS
    | OTHERS
    | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_count", "_sum")}
)

PROMQL_FUNCTIONS_AND_WORDS = {
    "sum", "min", "max", "rate", "increase", "histogram_quantile", "absent", "vector",
    "by", "on", "and", "or", "unless", "le",
}  # fmt: skip


def series_named(expression: str) -> set[str]:
    """Metric names an expression reads: words that open a selector or stand bare, not label
    names inside braces or grouping clauses, nor strings."""
    without_strings = re.sub(r'"[^"]*"', '""', expression)
    without_labels = re.sub(r"\{[^}]*\}", "{}", without_strings)
    without_groups = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", without_labels)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", without_groups))
    return {w for w in words if w not in PROMQL_FUNCTIONS_AND_WORDS and not w.isdigit()}
