"""Fair share through a real head, boto3 and the aws CLI: scheduling-policy CRUD, a queue with a
policy, the shareIdentifier rules, jobs of two shares started in fair-share order, what a waiting
job says, GetJobQueueSnapshot, and a restart that keeps it all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))


def _error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert raised.value.response["Error"]["Code"] == "ClientException"
    return str(raised.value.response["Error"]["Message"])


def test_scheduling_policy_crud_and_queue_rules(head: HeadProcess, tmp_path: Path) -> None:
    b = head.batch()
    made = b.create_scheduling_policy(
        name="fair",
        fairsharePolicy={
            "shareDecaySeconds": 3600,
            "computeReservation": 0,
            "shareDistribution": [
                {"shareIdentifier": "teamA", "weightFactor": 1},
                {"shareIdentifier": "lab*", "weightFactor": 0.25},
            ],
        },
        tags={"site": "hpc"},
    )
    arn = made["arn"]
    assert arn.endswith(":scheduling-policy/fair") and made["name"] == "fair"
    assert "overlaps" in _error(
        b.create_scheduling_policy,
        name="bad",
        fairsharePolicy={
            "shareDistribution": [{"shareIdentifier": "lab*"}, {"shareIdentifier": "lab1"}]
        },
    )
    (policy,) = b.describe_scheduling_policies(arns=[arn, arn + "x"])["schedulingPolicies"]
    assert policy["fairsharePolicy"]["shareDistribution"][1] == {
        "shareIdentifier": "lab*",
        "weightFactor": 0.25,
    }
    assert policy["tags"] == {"site": "hpc"}
    b.update_scheduling_policy(arn=arn, fairsharePolicy={"shareDecaySeconds": 600})
    (policy,) = b.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]
    assert policy["fairsharePolicy"]["shareDecaySeconds"] == 600
    assert [p["arn"] for p in b.list_scheduling_policies()["schedulingPolicies"]] == [arn]

    assert "schedulingPolicyArn: no scheduling policy" in _error(
        b.create_job_queue,
        jobQueueName="nope",
        priority=1,
        schedulingPolicyArn=arn + "x",
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}],
    )
    b.create_job_queue(
        jobQueueName="fairq",
        priority=1,
        schedulingPolicyArn=arn,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}],
    )
    (queue,) = b.describe_job_queues(jobQueues=["fairq"])["jobQueues"]
    assert queue["schedulingPolicyArn"] == arn
    assert "is a FIFO queue" in _error(
        b.update_job_queue, jobQueue="default", schedulingPolicyArn=arn
    )
    assert "used by job queue(s) fairq" in _error(b.delete_scheduling_policy, arn=arn)

    b.register_job_definition(
        jobDefinitionName="t", type="container", containerProperties={"command": ["true"]}
    )
    assert "shareIdentifier: is required on job queue fairq" in _error(
        b.submit_job, jobName="x", jobQueue="fairq", jobDefinition="t"
    )
    assert "shareIdentifier: is only for fair-share job queues" in _error(
        b.submit_job, jobName="x", jobQueue="default", jobDefinition="t", shareIdentifier="teamA"
    )

    cli = head.aws(tmp_path, "describe-scheduling-policies", "--arns", arn)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["schedulingPolicies"][0]["name"] == "fair"

    head.stop()  # the policy and the queue's tie to it survive a restart
    head.start()
    b = head.batch()
    assert b.describe_scheduling_policies(arns=[arn])["schedulingPolicies"][0] == policy
    (queue,) = b.describe_job_queues(jobQueues=["fairq"])["jobQueues"]
    assert queue["schedulingPolicyArn"] == arn
    b.update_job_queue(jobQueue="fairq", state="DISABLED")
    wait_for(
        lambda: b.describe_job_queues(jobQueues=["fairq"])["jobQueues"][0]["state"] == "DISABLED"
    )
    b.delete_job_queue(jobQueue="fairq")
    b.delete_scheduling_policy(arn=arn)
    assert b.list_scheduling_policies()["schedulingPolicies"] == []


def test_two_shares_run_in_fair_share_order(head: HeadProcess, tmp_path: Path) -> None:
    """4 vCPUs (2 nodes of 2), jobs of 2 vCPUs: A has weight factor 1, B 0.5 (twice A's
    share). Held back by a disabled compute environment, the snapshot is A1 B1 B2 B3 A2 B4 A3
    A4 (no usage: both bid 0 and A1 is older; a job adds J = 2 vCPUs * 60 s * factor, a share
    bids J / ln(1 + J / value): A 173.1 -> B (B 86.6) -> B (148.0) -> B (208.6) -> A (A 296.0)
    -> B -> A -> A); enabled, the first two to start are A1 and B1, which FIFO would not do (it
    would start A1 and A2)."""
    b = head.batch()
    arn = b.create_scheduling_policy(
        name="ab",
        fairsharePolicy={
            "shareDecaySeconds": 600,
            "shareDistribution": [
                {"shareIdentifier": "A", "weightFactor": 1},
                {"shareIdentifier": "B", "weightFactor": 0.5},
            ],
        },
    )["arn"]
    b.create_job_queue(
        jobQueueName="fairq",
        priority=1,
        schedulingPolicyArn=arn,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}],
    )
    b.register_job_definition(
        jobDefinitionName="s",
        type="container",
        containerProperties={
            "command": ["sleep", "2"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "2"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    )
    b.update_compute_environment(computeEnvironment="local", state="DISABLED")
    ids: dict[str, str] = {}
    for share in "AB":
        for n in range(1, 5):
            job = b.submit_job(
                jobName=f"{share}{n}", jobQueue="fairq", jobDefinition="s", shareIdentifier=share
            )
            ids[job["jobId"]] = f"{share}{n}"
    snapshot = b.get_job_queue_snapshot(jobQueue="fairq")
    front = [ids[j["jobArn"].rsplit("/", 1)[1]] for j in snapshot["frontOfQueue"]["jobs"]]
    assert front == ["A1", "B1", "B2", "B3", "A2", "B4", "A3", "A4"]
    assert snapshot["queueUtilization"]["fairshareUtilization"]["activeShareCount"] == 0
    cli = head.aws(tmp_path, "get-job-queue-snapshot", "--job-queue", "fairq")
    assert cli.returncode == 0, cli.stderr
    assert len(json.loads(cli.stdout)["frontOfQueue"]["jobs"]) == 8

    by_name = {name: job_id for job_id, name in ids.items()}
    b.update_compute_environment(computeEnvironment="local", state="ENABLED")
    for name in ("A1", "B1"):
        head.wait_status(by_name[name], "RUNNING", "SUCCEEDED")
    a2 = head.describe(by_name["A2"])
    if a2["status"] == "RUNNABLE":  # B's jobs come first while A1 and B1 run
        assert a2["statusReason"].startswith('share "A" is over its fair share: usage ')
    for name in by_name:
        head.wait_status(by_name[name], "SUCCEEDED", timeout=60)
    started = sorted(by_name, key=lambda n: head.describe(by_name[n])["startedAt"])
    assert set(started[:2]) == {"A1", "B1"}, started


def test_hpcbatch_describe_says_a_share_is_over_its_fair_share(head: HeadProcess) -> None:
    """Share A holds all 4 vCPUs; A's next job and B's first wait, and B bids lower: A's job
    says so, with the numbers, through ``hpcbatch submit --share`` and ``hpcbatch describe``."""
    b = head.batch()
    arn = b.create_scheduling_policy(name="p", fairsharePolicy={"shareDecaySeconds": 600})["arn"]
    b.create_job_queue(
        jobQueueName="fairq",
        priority=1,
        schedulingPolicyArn=arn,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}],
    )
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [HPCBATCH, *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    busy = [
        cli(
            "submit", "--queue", "fairq", "--share", "A", "--vcpus", "2", "--", "sleep", "30"
        ).split()[-1]
        for _ in range(2)
    ]
    try:
        for job_id in busy:
            head.wait_status(job_id, "RUNNING")
        waiting = cli("submit", "--queue", "fairq", "--share", "A", "--vcpus", "2", "--", "true")
        cli("submit", "--queue", "fairq", "--share", "B", "--vcpus", "2", "--", "true")
        job_id = waiting.split()[-1]
        shown = cli("describe", job_id)
        assert 'share "A" is over its fair share: usage ' in shown
        assert "4 vCPUs running (" in shown  # and the vCPU-s they are expected to add still
        assert "vCPU-s more expected), jobs ~60 s, weight factor 1: priority" in shown
        assert 'vs "B" usage 0.0 vCPU-s, 0 vCPUs running' in shown
    finally:
        b.terminate_jobs(jobs=busy, reason="test over")
