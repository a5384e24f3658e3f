"""Every operation the head serves, through the aws CLI against a real head, in the order an AWS
user would call them: a compute environment from the API, a fair-share queue, a license, a job
that needs it, snapshots, tags, quota shares on a second queue (with a quota-share scheduling
policy, AWS's way), then everything taken down again.
CancelJobs and TerminateJobs are the exception: the aws CLI on PyPI bundles a botocore without
them (tests/head/test_boto3_bulk_jobs.py runs them through boto3); SageMaker's operations are
refused (tests/head/test_boto3_unserved.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore import xform_name

from hpcbatch.head.api.parse import OPERATIONS
from tests.head.headproc import HeadProcess, wait_for


class Cli:
    def __init__(self, head: HeadProcess, home: Path) -> None:
        self.head, self.home, self.called = head, home, []

    def __call__(self, command: str, *args: str) -> Any:
        self.called.append(command)
        done = self.head.aws(self.home, command, *args)
        assert done.returncode == 0, f"aws batch {command} {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else {}


def test_every_served_operation_through_the_aws_cli(head: HeadProcess, tmp_path: Path) -> None:
    aws = Cli(head, tmp_path)
    ce = aws(
        "create-compute-environment",
        "--compute-environment-name", "cli-ce",
        "--type", "MANAGED",
        "--compute-resources", json.dumps({"type": "LOCAL", "maxvCpus": 1, "subnets": ["s-1"]}),
    )  # fmt: skip
    assert ce["computeEnvironmentArn"].endswith(":compute-environment/cli-ce")

    def ce_status() -> str | None:
        found = aws("describe-compute-environments", "--compute-environments", "cli-ce")
        status = found["computeEnvironments"][0]["status"]
        return status if status == "VALID" else None

    wait_for(ce_status, 30, "cli-ce to be VALID")
    aws("update-compute-environment", "--compute-environment", "cli-ce", "--state", "ENABLED")

    share = {"shareIdentifier": "team*", "weightFactor": 1.0}
    policy = aws(
        "create-scheduling-policy",
        "--name", "fair",
        "--fairshare-policy", json.dumps({"shareDecaySeconds": 60, "shareDistribution": [share]}),
    )["arn"]  # fmt: skip
    described = aws("describe-scheduling-policies", "--arns", policy)["schedulingPolicies"]
    assert described[0]["fairsharePolicy"]["shareDistribution"] == [share]
    assert [p["arn"] for p in aws("list-scheduling-policies")["schedulingPolicies"]] == [policy]
    aws(
        "update-scheduling-policy",
        "--arn", policy,
        "--fairshare-policy", json.dumps({"shareDecaySeconds": 120, "shareDistribution": [share]}),
    )  # fmt: skip

    queue = aws(
        "create-job-queue",
        "--job-queue-name", "cli-q",
        "--priority", "1",
        "--compute-environment-order", "order=1,computeEnvironment=cli-ce",
        "--scheduling-policy-arn", policy,
    )["jobQueueArn"]  # fmt: skip
    aws("update-job-queue", "--job-queue", "cli-q", "--priority", "2")
    assert aws("describe-job-queues", "--job-queues", "cli-q")["jobQueues"][0]["priority"] == 2

    aws("create-consumable-resource", "--consumable-resource-name", "lic", "--total-quantity", "1")
    aws(
        "update-consumable-resource",
        "--consumable-resource", "lic", "--operation", "ADD", "--quantity", "1",
    )  # fmt: skip
    assert aws("describe-consumable-resource", "--consumable-resource", "lic")["totalQuantity"] == 2
    listed = aws("list-consumable-resources")["consumableResources"]
    assert [r["consumableResourceName"] for r in listed] == ["lic"]

    aws(
        "register-job-definition",
        "--job-definition-name", "cli-def",
        "--type", "container",
        "--container-properties", json.dumps({
            "command": ["true"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}
            ],
        }),
        "--consumable-resource-properties",
        json.dumps({"consumableResourceList": [{"consumableResource": "lic", "quantity": 1}]}),
    )  # fmt: skip
    definitions = aws("describe-job-definitions", "--job-definition-name", "cli-def")
    assert definitions["jobDefinitions"][0]["revision"] == 1

    job_id = aws(
        "submit-job",
        "--job-name", "j",
        "--job-queue", "cli-q",
        "--job-definition", "cli-def",
        "--share-identifier", "team1",
    )["jobId"]  # fmt: skip

    def finished() -> dict[str, Any] | None:
        job = aws("describe-jobs", "--jobs", job_id)["jobs"][0]
        return job if job["status"] in ("SUCCEEDED", "FAILED") else None

    job = wait_for(finished, 30, "the job to end")
    assert (job["status"], job["shareIdentifier"]) == ("SUCCEEDED", "team1")
    done = aws("list-jobs", "--job-queue", "cli-q", "--job-status", "SUCCEEDED")
    assert [(j["jobId"], j["shareIdentifier"]) for j in done["jobSummaryList"]] == [
        (job_id, "team1")
    ]
    users = aws("list-jobs-by-consumable-resource", "--consumable-resource", "lic")["jobs"]
    assert [j["jobArn"].rsplit("/", 1)[1] for j in users] == [job_id]
    snapshot = aws("get-job-queue-snapshot", "--job-queue", "cli-q")
    assert snapshot["frontOfQueue"]["jobs"] == []

    aws("tag-resource", "--resource-arn", queue, "--tags", "team=one")
    assert aws("list-tags-for-resource", "--resource-arn", queue)["tags"] == {"team": "one"}
    aws("untag-resource", "--resource-arn", queue, "--tag-keys", "team")
    assert aws("list-tags-for-resource", "--resource-arn", queue)["tags"] == {}

    sleeper = aws(
        "submit-job", "--job-name", "s", "--job-queue", "cli-q", "--job-definition", "cli-def",
        "--share-identifier", "team1", "--container-overrides", '{"command": ["sleep", "60"]}',
    )["jobId"]  # fmt: skip
    head.wait_status(sleeper, "RUNNING")
    aws("cancel-job", "--job-id", sleeper, "--reason", "not this one")  # a running job stays
    aws("terminate-job", "--job-id", sleeper, "--reason", "this one")
    assert head.wait_status(sleeper, "FAILED")["statusReason"] == "this one"

    # AWS's quota-share sequence: a quotaSharePolicy, a queue naming it, then its quota shares
    quota_policy = aws(
        "create-scheduling-policy",
        "--name", "cli-quota",
        "--quota-share-policy", "idleResourceAssignmentStrategy=FIFO",
    )["arn"]  # fmt: skip
    (described,) = aws("describe-scheduling-policies", "--arns", quota_policy)["schedulingPolicies"]
    assert described["quotaSharePolicy"] == {"idleResourceAssignmentStrategy": "FIFO"}
    aws(
        "create-job-queue",
        "--job-queue-name", "cli-q2",
        "--priority", "1",
        "--scheduling-policy-arn", quota_policy,
        "--compute-environment-order", "order=1,computeEnvironment=cli-ce",
    )  # fmt: skip
    quota = aws(
        "create-quota-share",
        "--quota-share-name", "qa",
        "--job-queue", "cli-q2",
        "--capacity-limits", "maxCapacity=1,capacityUnit=VCPU",
        "--resource-sharing-configuration", "strategy=RESERVE",
        "--preemption-configuration", "inSharePreemption=DISABLED",
    )["quotaShareArn"]  # fmt: skip
    assert aws("describe-quota-share", "--quota-share-arn", quota)["quotaShareName"] == "qa"
    shares = aws("list-quota-shares", "--job-queue", "cli-q2")["quotaShares"]
    assert [s["quotaShareArn"] for s in shares] == [quota]
    aws("update-quota-share", "--quota-share-arn", quota, "--state", "DISABLED")
    aws("delete-quota-share", "--quota-share-arn", quota)

    aws("deregister-job-definition", "--job-definition", "cli-def:1")
    aws("delete-consumable-resource", "--consumable-resource", "lic")
    for name in ("cli-q", "cli-q2"):
        aws("update-job-queue", "--job-queue", name, "--state", "DISABLED")
        aws("delete-job-queue", "--job-queue", name)
    aws("delete-scheduling-policy", "--arn", policy)
    aws("delete-scheduling-policy", "--arn", quota_policy)
    aws("update-compute-environment", "--compute-environment", "cli-ce", "--state", "DISABLED")
    aws("delete-compute-environment", "--compute-environment", "cli-ce")

    def gone() -> bool:
        left = aws("describe-compute-environments", "--compute-environments", "cli-ce")
        return not left["computeEnvironments"]

    wait_for(gone, 30, "cli-ce to be deleted")
    served = {xform_name(name, "-") for name, _ in OPERATIONS.values()}
    assert set(aws.called) == served - {"cancel-jobs", "terminate-jobs"}
