"""Real boto3 requests parse: bodies are built by boto3's own rest-json serializer (no network).

Also checks that every request model accepts every member botocore's input shape defines, so an
AWS-only field a client sends is kept rather than refused as unknown.
"""

from __future__ import annotations

import typing
from typing import Any
from urllib.parse import unquote

import botocore.session
import pytest
from botocore.model import OperationModel, Shape
from botocore.serialize import create_serializer
from pydantic import BaseModel

from hpcbatch.head.api.models import aws_fields
from hpcbatch.head.api.models.integers import field_width
from hpcbatch.head.api.parse import OPERATIONS, parse_request

ARN = "arn:aws:batch:us-east-1:123456789012"
SERVICE = botocore.session.get_session().get_service_model("batch")
SERIALIZER = create_serializer("rest-json")

CONTAINER = {
    "image": "busybox",
    "command": ["python", "train.py", "Ref::epochs"],
    "jobRoleArn": "arn:aws:iam::123456789012:role/job",
    "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
    "environment": [{"name": "OMP_NUM_THREADS", "value": "4"}, {"name": "EMPTY", "value": ""}],
    "resourceRequirements": [
        {"type": "VCPU", "value": "4"},
        {"type": "MEMORY", "value": "8192"},
        {"type": "GPU", "value": "1"},
    ],
    "volumes": [{"name": "scratch", "host": {"sourcePath": "/scratch"}}],
    "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": False}],
    "ulimits": [],  # hpcbatch refuses any entry: it runs processes, not containers
    "linuxParameters": {"sharedMemorySize": 1024, "devices": [{"hostPath": "/dev/fuse"}]},
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
    "secrets": [{"name": "TOKEN", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/t"}],
    "privileged": False,
    "readonlyRootFilesystem": False,
    "user": "nobody",
}
RETRY = {
    "attempts": 3,
    "evaluateOnExit": [
        {"onExitCode": "137", "action": "retry"},
        {"onReason": "CannotPullContainerError:*", "action": "EXIT"},
        {"onStatusReason": "Host EC2*", "onExitCode": "1*", "action": "Retry"},
    ],
}
TAGS = {"team": "ml", "cost-center": "42"}

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "CreateComputeEnvironment",
        {
            "computeEnvironmentName": "gpu-hosts",
            "type": "MANAGED",
            "state": "ENABLED",
            "computeResources": {
                "type": "EC2",
                "allocationStrategy": "BEST_FIT_PROGRESSIVE",
                "minvCpus": 0,
                "maxvCpus": 256,
                "desiredvCpus": 16,
                "instanceTypes": ["p4d.24xlarge"],
                "subnets": ["subnet-1", "subnet-2"],
                "securityGroupIds": ["sg-1"],
                "instanceRole": "ecsInstanceRole",
                "tags": {"Name": "batch"},
                "launchTemplate": {"launchTemplateName": "lt", "version": "$Latest"},
                "ec2Configuration": [{"imageType": "ECS_AL2_NVIDIA"}],
            },
            "serviceRole": "arn:aws:iam::123456789012:role/AWSBatchServiceRole",
            "tags": TAGS,
        },
    ),
    (
        "CreateComputeEnvironment",
        {"computeEnvironmentName": "own", "type": "UNMANAGED", "unmanagedvCpus": 64},
    ),
    (
        "DescribeComputeEnvironments",
        {
            "computeEnvironments": ["gpu-hosts", f"{ARN}:compute-environment/own"],
            "maxResults": 10,
            "nextToken": "abc",
        },
    ),
    ("DescribeComputeEnvironments", {}),
    (
        "UpdateComputeEnvironment",
        {
            "computeEnvironment": "gpu-hosts",
            "state": "DISABLED",
            "computeResources": {"minvCpus": 0, "maxvCpus": 512, "desiredvCpus": 0},
            "serviceRole": "role",
            "updatePolicy": {"terminateJobsOnUpdate": False, "jobExecutionTimeoutMinutes": 30},
        },
    ),
    ("DeleteComputeEnvironment", {"computeEnvironment": f"{ARN}:compute-environment/own"}),
    (
        "CreateJobQueue",
        {
            "jobQueueName": "high",
            "state": "ENABLED",
            "priority": 10,
            "schedulingPolicyArn": f"{ARN}:scheduling-policy/fair",
            "computeEnvironmentOrder": [
                {"order": 1, "computeEnvironment": "gpu-hosts"},
                {"order": 2, "computeEnvironment": f"{ARN}:compute-environment/own"},
            ],
            "tags": TAGS,
            "jobStateTimeLimitActions": [
                {"reason": "stuck", "state": "RUNNABLE", "maxTimeSeconds": 600, "action": "CANCEL"}
            ],
        },
    ),
    ("DescribeJobQueues", {"jobQueues": ["high"], "maxResults": 100}),
    (
        "UpdateJobQueue",
        {
            "jobQueue": "high",
            "state": "DISABLED",
            "priority": 1,
            "computeEnvironmentOrder": [{"order": 0, "computeEnvironment": "own"}],
        },
    ),
    ("DeleteJobQueue", {"jobQueue": f"{ARN}:job-queue/high"}),
    (
        "RegisterJobDefinition",
        {
            "jobDefinitionName": "train",
            "type": "container",
            "parameters": {"epochs": "10"},
            "schedulingPriority": 5,
            "containerProperties": CONTAINER,
            "retryStrategy": RETRY,
            "propagateTags": True,
            "timeout": {"attemptDurationSeconds": 3600},
            "tags": TAGS,
            "platformCapabilities": ["EC2"],
        },
    ),
    (
        "RegisterJobDefinition",
        {
            "jobDefinitionName": "mpi",
            "type": "multinode",
            "nodeProperties": {
                "numNodes": 8,
                "mainNode": 0,
                "nodeRangeProperties": [
                    {"targetNodes": "0", "container": {"image": "mpi", "vcpus": 2, "memory": 2048}},
                    {"targetNodes": "1:6", "container": CONTAINER},
                    {
                        "targetNodes": "7:",
                        "container": {"command": ["worker"]},
                        "instanceTypes": ["c5.large"],
                    },
                ],
            },
            "retryStrategy": {"attempts": 1},
        },
    ),
    (
        "DescribeJobDefinitions",
        {"jobDefinitionName": "train", "status": "ACTIVE", "maxResults": 50},
    ),
    ("DescribeJobDefinitions", {"jobDefinitions": ["train:1", f"{ARN}:job-definition/mpi:2"]}),
    ("DeregisterJobDefinition", {"jobDefinition": "train:1"}),
    (
        "SubmitJob",
        {
            "jobName": "sweep-1",
            "jobQueue": "high",
            "jobDefinition": "train:3",
            "shareIdentifier": "teamA",
            "schedulingPriorityOverride": 100,
            "arrayProperties": {"size": 1000},
            "dependsOn": [
                {"jobId": "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11", "type": "N_TO_N"},
                {"type": "SEQUENTIAL"},
                {"jobId": "0b7f8f1e-1111-2222-3333-444455556666"},
            ],
            "parameters": {"epochs": "20"},
            "containerOverrides": {
                "command": ["python", "train.py", "--lr", "0.1"],
                "environment": [{"name": "SEED", "value": "7"}],
                "resourceRequirements": [
                    {"type": "GPU", "value": "2"},
                    {"type": "VCPU", "value": "0.5"},
                ],
                "memory": 4096,
                "instanceType": "p3.2xlarge",
            },
            "retryStrategy": RETRY,
            "propagateTags": False,
            "timeout": {"attemptDurationSeconds": 60},
            "tags": TAGS,
        },
    ),
    (
        "SubmitJob",
        {
            "jobName": "mpi-run",
            "jobQueue": f"{ARN}:job-queue/high",
            "jobDefinition": f"{ARN}:job-definition/mpi:2",
            "nodeOverrides": {
                "numNodes": 4,
                "nodePropertyOverrides": [
                    {
                        "targetNodes": "0:",
                        "containerOverrides": {
                            "vcpus": 8,
                            "environment": [{"name": "NCCL_DEBUG", "value": "INFO"}],
                        },
                    },
                ],
            },
        },
    ),
    (
        "DescribeJobs",
        {
            "jobs": [
                "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11",
                "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11:7",
            ]
        },
    ),
    (
        "ListJobs",
        {"jobQueue": "high", "jobStatus": "RUNNABLE", "maxResults": 1000, "nextToken": "t"},
    ),
    ("ListJobs", {"jobQueue": "high", "filters": [{"name": "JOB_NAME", "values": ["sweep*"]}]}),
    ("ListJobs", {"arrayJobId": "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11"}),
    (
        "ListJobs",
        {
            "multiNodeJobId": "5a2c9a5e",
            "filters": [{"name": "AFTER_CREATED_AT", "values": ["1700000000000"]}],
        },
    ),
    ("CancelJob", {"jobId": "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11", "reason": "not needed"}),
    ("TerminateJob", {"jobId": "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11", "reason": "x" * 1024}),
    (
        "CancelJobs",
        {"jobs": ["5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11", "5a2c9a5e:3"], "reason": "not needed"},
    ),
    ("TerminateJobs", {"jobs": ["5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11#1"], "reason": "x" * 1024}),
    ("TagResource", {"resourceArn": f"{ARN}:job-queue/high", "tags": TAGS}),
    ("UntagResource", {"resourceArn": f"{ARN}:job/5a2c9a5e", "tagKeys": ["team", "x"]}),
    ("ListTagsForResource", {"resourceArn": f"{ARN}:job-definition/train:3"}),
    (
        "CreateConsumableResource",
        {
            "consumableResourceName": "matlab",
            "totalQuantity": 2**40,
            "resourceType": "NON_REPLENISHABLE",
            "tags": TAGS,
        },
    ),
    ("DescribeConsumableResource", {"consumableResource": f"{ARN}:consumable-resource/matlab"}),
    (
        "ListConsumableResources",
        {
            "filters": [{"name": "CONSUMABLE_RESOURCE_NAME", "values": ["mat*"]}],
            "maxResults": 10,
        },
    ),
    (
        "UpdateConsumableResource",
        {"consumableResource": "matlab", "operation": "ADD", "quantity": 3, "clientToken": "t"},
    ),
    ("DeleteConsumableResource", {"consumableResource": "matlab"}),
    (
        "ListJobsByConsumableResource",
        {
            "consumableResource": "matlab",
            "filters": [
                {"name": "JOB_STATUS", "values": ["RUNNABLE"]},
                {"name": "JOB_NAME", "values": ["sweep*"]},
            ],
            "maxResults": 100,
        },
    ),
    (
        "CreateQuotaShare",
        {
            "quotaShareName": "teamA",
            "jobQueue": "high",
            "capacityLimits": [{"maxCapacity": 8, "capacityUnit": "VCPU"}],
            "resourceSharingConfiguration": {"strategy": "LEND_AND_BORROW", "borrowLimit": 50},
            "preemptionConfiguration": {"inSharePreemption": "DISABLED"},
            "state": "ENABLED",
            "tags": TAGS,
        },
    ),
    ("DescribeQuotaShare", {"quotaShareArn": f"{ARN}:job-queue/high/quota-share/teamA"}),
    ("ListQuotaShares", {"jobQueue": "high", "maxResults": 10, "nextToken": "1"}),
    (
        "UpdateQuotaShare",
        {
            "quotaShareArn": f"{ARN}:job-queue/high/quota-share/teamA",
            "capacityLimits": [{"maxCapacity": 2, "capacityUnit": "GPU"}],
            "resourceSharingConfiguration": {"strategy": "RESERVE"},
            "preemptionConfiguration": {"inSharePreemption": "ENABLED"},
            "state": "DISABLED",
        },
    ),
    ("DeleteQuotaShare", {"quotaShareArn": f"{ARN}:job-queue/high/quota-share/teamA"}),
    (
        "CreateSchedulingPolicy",
        {
            "name": "fair",
            "fairsharePolicy": {
                "shareDecaySeconds": 3600,
                "computeReservation": 10,
                "shareDistribution": [
                    {"shareIdentifier": "teamA", "weightFactor": 0.5},
                    {"shareIdentifier": "lab*"},
                ],
            },
            "tags": TAGS,
        },
    ),
    ("DescribeSchedulingPolicies", {"arns": [f"{ARN}:scheduling-policy/fair"]}),
    ("ListSchedulingPolicies", {"maxResults": 10}),
    (
        "UpdateSchedulingPolicy",
        {"arn": f"{ARN}:scheduling-policy/fair", "fairsharePolicy": {"shareDecaySeconds": 0}},
    ),
    ("DeleteSchedulingPolicy", {"arn": f"{ARN}:scheduling-policy/fair"}),
    ("GetJobQueueSnapshot", {"jobQueue": "default"}),
]


def _serialize(operation: str, params: dict[str, Any]) -> dict[str, Any]:
    model = SERVICE.operation_model(operation)
    request: dict[str, Any] = SERIALIZER.serialize_to_request(params, model)
    return request


def _route(operation: str, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the router does: the lower-cased last path segment, or the tag route's parameters."""
    segments = request["url_path"].split("/")
    if segments[2] != "tags":
        return segments[-1].lower(), {}
    path_params: dict[str, Any] = {"resourceArn": unquote(segments[3])}
    if "tagKeys" in request["query_string"]:
        path_params["tagKeys"] = list(request["query_string"]["tagKeys"])
    return operation.lower(), path_params


@pytest.mark.parametrize(
    ("operation", "params"), REQUESTS, ids=[f"{op}-{i}" for i, (op, _) in enumerate(REQUESTS)]
)
def test_boto3_request_parses(operation: str, params: dict[str, Any]) -> None:
    request = _serialize(operation, params)
    key, path_params = _route(operation, request)
    assert OPERATIONS[key][0] == operation

    parsed = parse_request(key, request["body"] or b"", path_params=path_params)

    assert isinstance(parsed, OPERATIONS[key][1])
    echoed = aws_fields(parsed)
    for name in params:
        assert name in echoed


def test_every_operation_has_a_boto3_case() -> None:
    assert {op for op, _ in REQUESTS} == {aws for aws, _ in OPERATIONS.values()}


def test_echo_keeps_aws_only_fields_and_normalises_actions() -> None:
    params = dict(REQUESTS[10][1])
    request = _serialize("RegisterJobDefinition", params)
    echoed = aws_fields(parse_request("registerjobdefinition", request["body"]))
    assert echoed["containerProperties"]["logConfiguration"] == CONTAINER["logConfiguration"]
    assert echoed["containerProperties"]["jobRoleArn"] == CONTAINER["jobRoleArn"]
    assert [rule["action"] for rule in echoed["retryStrategy"]["evaluateOnExit"]] == [
        "RETRY",
        "EXIT",
        "RETRY",
    ]


# ---------------------------------------------------------------------------------------------
# Every botocore member is a model field


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _element_shape(shape: Shape) -> Shape:
    while shape.type_name in ("list", "map"):
        shape = shape.member if shape.type_name == "list" else shape.value
    return shape


WIDTHS = {"integer": "32-bit Integer", "long": "64-bit Long"}

# Required by AWS, optional for hpcbatch's own kinds (checked by the model's validator instead).
RELAXED = {"ComputeResource.maxvCpus"}


def _check_model(model: type[BaseModel], shape: Shape, where: str) -> None:
    members = shape.members
    assert set(model.model_fields) == set(members), where
    for name in shape.required_members:
        if f"{model.__name__}.{name}" in RELAXED:
            continue
        assert model.model_fields[name].is_required(), f"{where}.{name} should be required"
    for name, field in model.model_fields.items():
        element = _element_shape(members[name])
        if element.type_name in WIDTHS:  # the one generic bound on integers matches botocore's
            assert field_width(model, name) == WIDTHS[element.type_name], f"{where}.{name}"
        for inner in _models_in(field.annotation):
            _check_model(inner, element, f"{where}.{name}")


@pytest.mark.parametrize("key", sorted(OPERATIONS))
def test_model_fields_match_botocore(key: str) -> None:
    aws_name, model = OPERATIONS[key]
    operation: OperationModel = SERVICE.operation_model(aws_name)
    _check_model(model, operation.input_shape, aws_name)
