"""LOCAL compute environments share the head's machine: two CEs each as big as the machine,
and the embedded ``local`` CE sized by the machine, never run more jobs at once than the machine
has CPUs; a job held back says it waits for the machine. A real head, boto3, real jobs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.head.headproc import HeadProcess, wait_for

CPUS = len(os.sched_getaffinity(0))


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    # vcpus 0, memory 0: local-1 is sized by the machine, so it shares it with the CEs' nodes
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=0, memory=0)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most jobs whose [startedAt, stoppedAt) overlap (an end before a start at a tie)."""
    edges = sorted(
        [(j["startedAt"], 1) for j in jobs] + [(j["stoppedAt"], -1) for j in jobs],
        key=lambda e: (e[0], e[1]),
    )
    most = now = 0
    for _, delta in edges:
        now += delta
        most = max(most, now)
    return most


def _waiting_reasons(head: HeadProcess, queues: list[str]) -> list[str]:
    b = head.batch()
    listed = [
        j for q in queues for j in b.list_jobs(jobQueue=q, jobStatus="RUNNABLE")["jobSummaryList"]
    ]
    return [str(j.get("statusReason", "")) for j in listed]


def test_two_local_ces_and_the_embedded_one_never_run_more_than_the_machine(
    head: HeadProcess,
) -> None:
    b = head.batch()
    queues = ["ql", "qa", "qb"]
    b.create_job_queue(
        jobQueueName="ql",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}],
    )
    for ce in ("a", "b"):
        # each as big as the whole machine: accepted, local-1 takes it all already
        b.create_compute_environment(
            computeEnvironmentName=ce,
            type="MANAGED",
            computeResources={"type": "LOCAL", "maxvCpus": CPUS},
        )
        b.create_job_queue(
            jobQueueName=f"q{ce}",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": ce}],
        )
    for ce in ("a", "b"):
        wait_for(
            lambda ce=ce: (
                b.describe_compute_environments(computeEnvironments=[ce])["computeEnvironments"][0][
                    "status"
                ]
                == "VALID"
                or None
            ),
            30,
            f"CE {ce} to be VALID",
        )
    b.register_job_definition(
        jobDefinitionName="cpu",
        type="container",
        containerProperties={
            "command": ["sleep", "2"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    )
    ids = [
        b.submit_job(jobName=f"j{i}", jobQueue=q, jobDefinition="cpu")["jobId"]
        for q in queues
        for i in range(CPUS)
    ]

    def all_wait_for_the_machine() -> list[str] | None:
        """The reasons of the jobs held back, once every one (the first of each queue too,
        which holds a reservation) says it waits for the machine."""
        reasons = _waiting_reasons(head, queues)
        machine = [r for r in reasons if r.startswith("waiting for the machine: ")]
        return reasons if reasons and machine == reasons else None

    held = wait_for(all_wait_for_the_machine, 30, "every held-back job to wait for the machine")
    assert f"of its {CPUS} CPU" in held[0], held[0]
    deadline = time.monotonic() + 120
    for job_id in ids:
        head.wait_status(
            job_id, "SUCCEEDED", "FAILED", timeout=max(1.0, deadline - time.monotonic())
        )
    jobs = [head.raw_describe(i) for i in ids]
    assert all(j["status"] == "SUCCEEDED" for j in jobs), [head.story(i) for i in ids]
    nodes = {j["hpcbatch"]["node"] for j in jobs}
    assert nodes == {"local-1", "a-1", "b-1"}
    assert _most_at_once(jobs) <= CPUS  # 3 x CPUS vCPUs of nodes, CPUS of machine
