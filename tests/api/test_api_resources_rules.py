"""Field rules of the compute environment, job queue and tag operations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.accepted import accept_keeps
from tests.api.helpers import merged, reject

ARN = "arn:aws:batch:us-east-1:123456789012"
MANAGED = {
    "computeEnvironmentName": "ce",
    "type": "MANAGED",
    "computeResources": {"type": "EC2", "maxvCpus": 64},
}


def _resources(**fields: Any) -> dict[str, Any]:
    return {"computeResources": {"type": "EC2", "maxvCpus": 64, **fields}}


CREATE_CE_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"computeEnvironmentName": "c e"}, "computeEnvironmentName", "letters, digits, hyphens"),
    ({"computeEnvironmentName": "x" * 129}, "computeEnvironmentName", "1-128"),
    ({"type": "SPOT"}, "type", "one of MANAGED, UNMANAGED"),
    ({"type": None}, "type", "is required"),
    ({"state": "ON"}, "state", "one of ENABLED, DISABLED"),
    ({"computeResources": None}, "computeResources", "required when type is MANAGED"),
    ({"unmanagedvCpus": 4}, "unmanagedvCpus", "only allowed when type is UNMANAGED"),
    ({"type": "UNMANAGED"}, "computeResources", "only allowed when type is MANAGED"),
    (
        {"computeResources": {"type": "GPU", "maxvCpus": 1}},
        "computeResources.type",
        "EC2, SPOT, FARGATE",
    ),
    ({"computeResources": {"type": "EC2"}}, "computeResources.maxvCpus", "is required"),
    (_resources(minvCpus=-1), "computeResources.minvCpus", "of at least 0"),
    (_resources(minvCpus=65), "computeResources.maxvCpus", "at least minvCpus (65) (got 64)"),
    (
        _resources(minvCpus=8, desiredvCpus=4),
        "computeResources.desiredvCpus",
        "at least minvCpus (8) (got 4)",
    ),
    (_resources(desiredvCpus=65), "computeResources.desiredvCpus", "at most maxvCpus (64)"),
    (_resources(bidPercentage=101), "computeResources.bidPercentage", "from 0 to 100"),
    (_resources(allocationStrategy="FAST"), "computeResources.allocationStrategy", "BEST_FIT"),
    (_resources(subnets="s-1"), "computeResources.subnets", "must be a list"),
    (_resources(capacityTags={}), "computeResources.capacityTags", "1-50 tags"),
    ({"tags": {"k": "v" * 257}}, "tags.k", "at most 256"),
    ({"serviceRole": 5}, "serviceRole", "must be a string"),
    (
        {"computeEnvironment": "ce"},
        "computeEnvironment",
        "is not a known parameter of CreateComputeEnvironment",
    ),
]


@pytest.mark.parametrize(("patch", "field", "phrase"), CREATE_CE_BAD)
def test_create_compute_environment_rejects(patch: dict[str, Any], field: str, phrase: str) -> None:
    reject("createcomputeenvironment", merged(MANAGED, patch), field, phrase)


@pytest.mark.parametrize(
    "data",
    [
        MANAGED,
        {
            "computeEnvironmentName": "own",
            "type": "UNMANAGED",
            "state": "DISABLED",
            "unmanagedvCpus": 0,
        },
        {"computeEnvironmentName": "own", "type": "UNMANAGED"},
        merged(
            MANAGED,
            _resources(
                minvCpus=0,
                desiredvCpus=64,
                allocationStrategy="BEST_FIT",
                bidPercentage=0,
                tags={},
                launchTemplate={"version": "1"},
            ),
        ),
        merged(
            MANAGED,
            {
                "eksConfiguration": {"eksClusterArn": "a", "kubernetesNamespace": "n"},
                "ecsSettings": {"containerInsights": "ENABLED"},
                "context": "c",
            },
        ),
    ],
)
def test_create_compute_environment_accepts(data: dict[str, Any]) -> None:
    accept_keeps("createcomputeenvironment", data)


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({}, "computeEnvironment", "is required"),
        ({"computeEnvironment": ""}, "computeEnvironment", "compute environment name"),
        (
            {"computeEnvironment": f"{ARN}:job-queue/ce"},
            "computeEnvironment",
            "compute-environment/NAME",
        ),
        ({"computeEnvironment": "ce", "state": "enabled"}, "state", "ENABLED, DISABLED"),
        (
            {"computeEnvironment": "ce", "computeResources": {"minvCpus": 9, "maxvCpus": 8}},
            "computeResources.maxvCpus",
            "at least minvCpus",
        ),
        (
            {"computeEnvironment": "ce", "computeResources": {"allocationStrategy": "BEST_FIT"}},
            "computeResources.allocationStrategy",
            "BEST_FIT_PROGRESSIVE",
        ),
        (
            {"computeEnvironment": "ce", "updatePolicy": {"jobExecutionTimeoutMinutes": 0}},
            "updatePolicy.jobExecutionTimeoutMinutes",
            "from 1 to 7,200",
        ),
        ({"computeEnvironment": "ce", "unmanagedvCpus": -1}, "unmanagedvCpus", "at least 0"),
    ],
)
def test_update_compute_environment_rejects(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("updatecomputeenvironment", data, field, phrase)


def test_update_compute_environment_accepts() -> None:
    accept_keeps(
        "updatecomputeenvironment",
        {
            "computeEnvironment": f"{ARN}:compute-environment/ce",
            "state": "DISABLED",
            "computeResources": {"maxvCpus": 0},
            "updatePolicy": {"terminateJobsOnUpdate": True},
        },
    )


@pytest.mark.parametrize(
    ("operation", "data", "field", "phrase"),
    [
        ("describecomputeenvironments", {"maxResults": 101}, "maxResults", "from 1 to 100"),
        (
            "describecomputeenvironments",
            {"computeEnvironments": ["ok", ""]},
            "computeEnvironments[1]",
            "compute environment name",
        ),
        (
            "describecomputeenvironments",
            {"computeEnvironments": [f"c{i}" for i in range(101)]},
            "computeEnvironments",
            "0-100 entries",
        ),
        ("describejobqueues", {"maxResults": 0}, "maxResults", "from 1 to 100"),
        ("describejobqueues", {"jobQueues": ["a b"]}, "jobQueues[0]", "job queue name"),
        ("describejobqueues", {"nextToken": ""}, "nextToken", "empty string"),
        ("deletecomputeenvironment", {}, "computeEnvironment", "is required"),
        ("deletejobqueue", {"jobQueue": ""}, "jobQueue", "job queue name"),
    ],
)
def test_describe_and_delete_reject(
    operation: str, data: dict[str, Any], field: str, phrase: str
) -> None:
    reject(operation, data, field, phrase)


# ---------------------------------------------------------------------------------------------
# Job queues

QUEUE = {
    "jobQueueName": "q",
    "priority": 1,
    "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "ce"}],
}


def _order(*entries: tuple[int, str]) -> dict[str, Any]:
    return {
        "computeEnvironmentOrder": [
            {"order": order, "computeEnvironment": ce} for order, ce in entries
        ]
    }


CREATE_QUEUE_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"jobQueueName": ""}, "jobQueueName", "1-128"),
    ({"priority": -1}, "priority", "from 0 to 1,000 (got -1)"),
    ({"priority": 1001}, "priority", "from 0 to 1,000 (got 1001)"),
    ({"priority": None}, "priority", "is required"),
    ({"state": "PAUSED"}, "state", "ENABLED, DISABLED"),
    ({"computeEnvironmentOrder": None}, "computeEnvironmentOrder", "is required"),
    (_order(), "computeEnvironmentOrder", "1-3 compute environments (got 0)"),
    (
        _order((1, "a"), (2, "b"), (3, "c"), (4, "d")),
        "computeEnvironmentOrder",
        "1-3 compute environments (got 4)",
    ),
    (
        _order((1, "a"), (1, "b")),
        "computeEnvironmentOrder[1].order",
        "must be unique: computeEnvironmentOrder[0] already has order 1",
    ),
    (
        _order((1, "a"), (2, "a")),
        "computeEnvironmentOrder[1].computeEnvironment",
        "lists compute environment a a second time",
    ),
    (
        _order((1, "a"), (2, f"{ARN}:compute-environment/a")),
        "computeEnvironmentOrder[1].computeEnvironment",
        "second time",
    ),
    (_order((-1, "a")), "computeEnvironmentOrder[0].order", "of at least 0"),
    (_order((1, "")), "computeEnvironmentOrder[0].computeEnvironment", "compute environment name"),
    (
        {"computeEnvironmentOrder": [{"order": 1}]},
        "computeEnvironmentOrder[0].computeEnvironment",
        "is required",
    ),
    (
        {"serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "s"}]},
        "serviceEnvironmentOrder",
        "cannot be combined with computeEnvironmentOrder",
    ),
    (
        {"schedulingPolicyArn": "fair"},
        "schedulingPolicyArn",
        "scheduling policy ARN arn:aws:batch:REGION:ACCOUNT:scheduling-policy/NAME",
    ),
    ({"schedulingPolicyArn": f"{ARN}:job-queue/fair"}, "schedulingPolicyArn", "scheduling"),
    ({"jobQueueType": "SLURM"}, "jobQueueType", "EKS, ECS"),
    (
        {
            "jobStateTimeLimitActions": [
                {"reason": "r", "state": "RUNNABLE", "maxTimeSeconds": 599, "action": "CANCEL"}
            ]
        },
        "jobStateTimeLimitActions[0].maxTimeSeconds",
        "from 600 to 86,400",
    ),
    (
        {
            "jobStateTimeLimitActions": [
                {"reason": "r", "state": "RUNNING", "maxTimeSeconds": 600, "action": "CANCEL"}
            ]
        },
        "jobStateTimeLimitActions[0].state",
        "one of RUNNABLE",
    ),
    (
        {
            "jobStateTimeLimitActions": [
                {"reason": "r", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "KILL"}
            ]
        },
        "jobStateTimeLimitActions[0].action",
        "CANCEL, TERMINATE",
    ),
    ({"tags": {"aws:x": "1"}}, "tags.aws:x", "reserved"),
]


@pytest.mark.parametrize(("patch", "field", "phrase"), CREATE_QUEUE_BAD)
def test_create_job_queue_rejects(patch: dict[str, Any], field: str, phrase: str) -> None:
    reject("createjobqueue", merged(QUEUE, patch), field, phrase)


@pytest.mark.parametrize(
    "patch",
    [
        {},
        {"priority": 0, "state": "DISABLED"},
        {"priority": 1000, "schedulingPolicyArn": f"{ARN}:scheduling-policy/fair"},
        _order((0, "a"), (5, "b"), (2, f"{ARN}:compute-environment/c")),
        {
            "computeEnvironmentOrder": None,
            "serviceEnvironmentOrder": [{"order": 1, "serviceEnvironment": "s"}],
        },
        {
            "jobStateTimeLimitActions": [
                {
                    "reason": "stuck",
                    "state": "RUNNABLE",
                    "maxTimeSeconds": 86400,
                    "action": "TERMINATE",
                }
            ]
        },
    ],
)
def test_create_job_queue_accepts(patch: dict[str, Any]) -> None:
    accept_keeps("createjobqueue", merged(QUEUE, patch))


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({}, "jobQueue", "is required"),
        ({"jobQueue": "q", "priority": 1001}, "priority", "from 0 to 1,000"),
        ({"jobQueue": "q", "state": "on"}, "state", "ENABLED, DISABLED"),
        (
            {"jobQueue": "q", **_order((1, "a"), (1, "b"))},
            "computeEnvironmentOrder[1].order",
            "unique",
        ),
        ({"jobQueue": "q", **_order()}, "computeEnvironmentOrder", "1-3"),
        (
            {"jobQueue": "q", "jobQueueName": "q"},
            "jobQueueName",
            "is not a known parameter of UpdateJobQueue",
        ),
    ],
)
def test_update_job_queue_rejects(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("updatejobqueue", data, field, phrase)


@pytest.mark.parametrize(
    "data",
    [{"jobQueue": "q"}, {"jobQueue": f"{ARN}:job-queue/q", "state": "ENABLED", "priority": 7}],
)
def test_update_job_queue_accepts(data: dict[str, Any]) -> None:
    accept_keeps("updatejobqueue", data)


# ---------------------------------------------------------------------------------------------
# Tags (resourceArn and tagKeys come from the URL as path_params)


@pytest.mark.parametrize(
    ("arn", "phrase"),
    [
        (f"{ARN}:job/abc:3", "child of an array or multi-node job"),
        (f"{ARN}:job/abc#1", "cannot be tagged"),
        ("arn:aws:s3:::bucket", "compute environment, job, job definition"),
        (f"{ARN}:job-queue/bad name", "compute environment, job"),
        (f"{ARN}:consumable-resource/x", "compute environment, job"),
        ("", "ARN"),
    ],
)
def test_tag_resource_arn_rejects(arn: str, phrase: str) -> None:
    reject(
        "tagresource", {"tags": {"a": "b"}}, "resourceArn", phrase, path_params={"resourceArn": arn}
    )


@pytest.mark.parametrize(
    ("operation", "data", "path_params", "field", "phrase"),
    [
        ("tagresource", {}, {"resourceArn": f"{ARN}:job/x"}, "tags", "is required"),
        ("tagresource", {"tags": {}}, {"resourceArn": f"{ARN}:job/x"}, "tags", "1-50 tags"),
        ("tagresource", {"tags": {"a": "b"}}, {}, "resourceArn", "is required"),
        (
            "untagresource",
            {},
            {"resourceArn": f"{ARN}:job/x", "tagKeys": []},
            "tagKeys",
            "1-50 tag keys (got 0)",
        ),
        (
            "untagresource",
            {},
            {"resourceArn": f"{ARN}:job/x", "tagKeys": [f"k{i}" for i in range(51)]},
            "tagKeys",
            "1-50 tag keys (got 51)",
        ),
        (
            "untagresource",
            {},
            {"resourceArn": f"{ARN}:job/x", "tagKeys": ["a", ""]},
            "tagKeys[1]",
            "tag keys must be 1-128",
        ),
        ("untagresource", {}, {"resourceArn": f"{ARN}:job/x"}, "tagKeys", "is required"),
        ("listtagsforresource", {}, {}, "resourceArn", "is required"),
    ],
)
def test_tag_operations_reject(
    operation: str, data: dict[str, Any], path_params: dict[str, Any], field: str, phrase: str
) -> None:
    reject(operation, data, field, phrase, path_params=path_params)


@pytest.mark.parametrize(
    "arn",
    [
        f"{ARN}:job/5a2c9a5e-0f1e",
        f"{ARN}:job-queue/q",
        f"{ARN}:compute-environment/ce",
        f"{ARN}:job-definition/d:3",
        f"{ARN}:scheduling-policy/fair",
    ],
)
def test_tag_operations_accept(arn: str) -> None:
    accept_keeps("tagresource", {"tags": {"a": "b"}}, path_params={"resourceArn": arn})
    accept_keeps("untagresource", {}, path_params={"resourceArn": arn, "tagKeys": ["a"]})
    accept_keeps("listtagsforresource", {}, path_params={"resourceArn": arn})
