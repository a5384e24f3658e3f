"""``/metrics`` on a real head: the contract's names, types and labels, values that match
``hpcbatch nodes`` and the queue while an array runs, and the counters once it is done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.head.headproc import HeadProcess, wait_for
from tests.metrics.scrape import Families, histogram_count, metrics_head, scrape, value

GAUGES = {
    "hpcbatch_queue_jobs": {"queue", "status"},
    "hpcbatch_queue_runnable_jobs_by_reason": {"queue", "reason"},
    **{
        f"hpcbatch_ce_{s}": {"ce"}
        for s in (
            "vcpus",
            "vcpus_allocated",
            "memory_bytes",
            "memory_allocated_bytes",
            "gpus",
            "gpus_allocated",
        )
    },
    **{
        f"hpcbatch_node_{s}": {"ce", "node"}
        for s in (
            "vcpus",
            "vcpus_allocated",
            "memory_bytes",
            "memory_allocated_bytes",
            "gpus",
            "gpus_allocated",
        )
    },
    "hpcbatch_nodes": {"ce", "state"},
    "hpcbatch_node_heartbeat_age_seconds": {"ce", "node"},
}
COUNTERS = {
    "hpcbatch_node_cpu_used_seconds": {"ce", "node"},
    "hpcbatch_jobs_submitted": {"queue"},
    "hpcbatch_jobs_finished": {"queue", "status"},
    "hpcbatch_attempts": {"queue"},
    "hpcbatch_job_retries": {"queue"},
    "hpcbatch_job_timeouts": {"queue"},
    "hpcbatch_host_lost": {"queue"},
    "hpcbatch_api_requests": {"operation", "outcome"},
    "hpcbatch_collector_errors": {"collector"},
}
HISTOGRAMS = {
    "hpcbatch_job_queue_wait_seconds": {"queue"},
    "hpcbatch_job_run_seconds": {"queue"},
    "hpcbatch_scheduling_pass_seconds": set(),
    "hpcbatch_batch_commit_seconds": set(),
    "hpcbatch_dispatch_latency_seconds": set(),
    "hpcbatch_api_request_seconds": {"operation"},
}
CHILDREN = 6  # on 2 nodes x 2 vCPUs: 4 run at once, 2 wait for capacity


@pytest.fixture
def head(tmp_path: Path) -> Iterator[tuple[HeadProcess, str]]:
    process, url = metrics_head(tmp_path / "head", nodes=2, vcpus=2, memory=4096)
    try:
        process.start()
        yield process, url
    finally:
        process.cleanup()


def submit_array(head: HeadProcess, seconds: int) -> str:
    response = head.batch().submit_job(
        jobName="metrics",
        jobQueue="default",
        jobDefinition="default",
        arrayProperties={"size": CHILDREN},
        containerOverrides={"command": ["sleep", str(seconds)]},
    )
    return str(response["jobId"])


def labelled(families: Families, name: str) -> list[dict[str, str]]:
    return [s.labels for s in families[name].samples if not s.name.endswith("_created")]


def test_every_contract_metric_has_its_type_and_labels(head: tuple[HeadProcess, str]) -> None:
    process, url = head
    job_id = submit_array(process, 30)
    families = wait_for(
        lambda: (f := scrape(url)) and histogram_count(f, "hpcbatch_job_queue_wait_seconds") and f,
        30,
        "a child to run",
    )
    for kind, table in (("gauge", GAUGES), ("counter", COUNTERS), ("histogram", HISTOGRAMS)):
        for name, labels in table.items():
            assert families[name].type == kind, name
            for sample_labels in labelled(families, name):
                assert set(sample_labels) - {"le"} == labels, (name, sample_labels)
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "python_info"):
        assert name in families, name
    every_value = {v for f in families.values() for s in f.samples for v in s.labels.values()}
    assert not any(job_id in v for v in every_value)  # never a job id
    assert {s.labels["operation"] for s in families["hpcbatch_api_requests"].samples} >= {
        "SubmitJob"
    }


def test_values_match_hpcbatch_nodes_and_the_queue_while_an_array_runs(
    head: tuple[HeadProcess, str],
) -> None:
    process, url = head
    submit_array(process, 4)

    def agreed() -> Families | None:
        families = scrape(url)
        nodes = process.get("/hpcbatch/v1/nodes")["nodes"]
        running = value(families, "hpcbatch_queue_jobs", queue="default", status="RUNNING")
        if running != 4:
            return None
        for node in nodes:
            labels = {"ce": node["computeEnvironment"], "node": node["name"]}
            got = value(families, "hpcbatch_node_vcpus_allocated", **labels)
            if got != float(node["allocatedVcpus"]):
                return None
            assert value(families, "hpcbatch_node_vcpus", **labels) == float(node["vcpus"])
            memory = value(families, "hpcbatch_node_memory_bytes", **labels)
            assert memory == node["memoryMiB"] * 1024 * 1024
        return families

    families = wait_for(agreed, 30, "4 children RUNNING, as hpcbatch nodes says")
    assert value(families, "hpcbatch_ce_vcpus_allocated", ce="local") == 4
    assert value(families, "hpcbatch_queue_jobs", queue="default", status="RUNNABLE") == 2
    assert value(families, "hpcbatch_queue_jobs", queue="default", status="PENDING") == 0
    waiting = value(
        families, "hpcbatch_queue_runnable_jobs_by_reason", queue="default", reason="capacity"
    )
    assert waiting == 2
    assert value(families, "hpcbatch_nodes", ce="local", state="ONLINE") == 2
    assert value(families, "hpcbatch_node_heartbeat_age_seconds", ce="local", node="local-1") < 30

    def done() -> Families | None:
        families = scrape(url)
        finished = value(families, "hpcbatch_jobs_finished", queue="default", status="SUCCEEDED")
        return families if finished == CHILDREN else None

    families = wait_for(done, 60, "every child to succeed")
    assert value(families, "hpcbatch_jobs_submitted", queue="default") == CHILDREN
    assert value(families, "hpcbatch_attempts", queue="default") == CHILDREN
    assert histogram_count(families, "hpcbatch_job_run_seconds", queue="default") == CHILDREN
    assert histogram_count(families, "hpcbatch_job_queue_wait_seconds") == CHILDREN
    assert histogram_count(families, "hpcbatch_dispatch_latency_seconds") >= 1

    def drained() -> bool:
        f = scrape(url)
        return (
            all(
                value(f, "hpcbatch_queue_jobs", queue="default", status=s) == 0
                for s in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
            )
            and value(f, "hpcbatch_ce_vcpus_allocated", ce="local") == 0
        )

    wait_for(drained, 10, "the queue to empty")
