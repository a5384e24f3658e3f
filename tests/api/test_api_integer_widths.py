"""Integers held to AWS's widths: 32 bits where botocore says Integer, 64 where it says Long.

One check in ``AwsModel`` does it for every field (``models/integers.py``);
tests/api/test_boto3_shapes.py holds each field's width to botocore's model.
"""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.head.api.models import SubmitJobRequest, UpdatePolicy, aws_fields
from hpcbatch.head.api.models.integers import field_width
from tests.api.helpers import accept, reject

SUBMIT = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}
INTEGER_RULE = "must be an integer from -2,147,483,648 to 2,147,483,647 (AWS's 32-bit Integer)"
LONG_RULE = (
    "must be an integer from -9,223,372,036,854,775,808 to 9,223,372,036,854,775,807 "
    "(AWS's 64-bit Long)"
)
CE = {"computeEnvironmentName": "c", "type": "MANAGED", "computeResources": {"type": "LOCAL"}}


@pytest.mark.parametrize(
    ("operation", "data", "field"),
    [
        (
            "submitjob",
            {**SUBMIT, "containerOverrides": {"vcpus": 2**70}},
            "containerOverrides.vcpus",
        ),
        (
            "submitjob",
            {**SUBMIT, "containerOverrides": {"memory": 2**31}},
            "containerOverrides.memory",
        ),
        (
            "submitjob",
            {
                **SUBMIT,
                "nodeOverrides": {
                    "nodePropertyOverrides": [
                        {"targetNodes": "0:", "containerOverrides": {"vcpus": 2**31}}
                    ]
                },
            },
            "nodeOverrides.nodePropertyOverrides[0].containerOverrides.vcpus",
        ),
        (
            "submitjob",
            {**SUBMIT, "timeout": {"attemptDurationSeconds": 2**40}},
            "timeout.attemptDurationSeconds",
        ),
        (
            "registerjobdefinition",
            {
                "jobDefinitionName": "d",
                "type": "container",
                "containerProperties": {"command": ["true"], "memory": 2**63},
            },
            "containerProperties.memory",
        ),
        (
            "createjobqueue",
            {
                "jobQueueName": "q",
                "priority": 1,
                "computeEnvironmentOrder": [{"order": 2**31, "computeEnvironment": "c"}],
            },
            "computeEnvironmentOrder[0].order",
        ),
        (
            "createcomputeenvironment",
            {**CE, "computeResources": {"type": "LOCAL", "maxvCpus": 2**32}},
            "computeResources.maxvCpus",
        ),
        (
            "createcomputeenvironment",
            {**CE, "type": "UNMANAGED", "computeResources": None, "unmanagedvCpus": 2**31},
            "unmanagedvCpus",
        ),
    ],
)
def test_an_integer_beyond_32_bits_is_refused_naming_the_field(
    operation: str, data: dict[str, Any], field: str
) -> None:
    data = {k: v for k, v in data.items() if v is not None}
    reject(operation, data, field, INTEGER_RULE)


def test_the_largest_integer_passes_the_width_check() -> None:
    # 2**31-1 vCPUs is absurd, but it is AWS's Integer: what refuses it is the head's own
    # capacity check, not the request's shape.
    model = accept("submitjob", {**SUBMIT, "containerOverrides": {"vcpus": 2**31 - 1}})
    assert aws_fields(model)["containerOverrides"]["vcpus"] == 2**31 - 1


def test_aws_only_structures_hold_numbers_to_long() -> None:
    """Loose structures mix Integer and Long members hpcbatch never reads: a Long passes, a
    number wider than any AWS type does not, with its path inside the structure."""
    pod = {"podProperties": {"securityContext": {"runAsUser": 2**40}}}
    definition = {"jobDefinitionName": "d", "type": "container", "eksProperties": pod}
    assert aws_fields(accept("registerjobdefinition", definition))["eksProperties"] == pod
    pod["podProperties"]["securityContext"]["runAsUser"] = 2**70
    reject(
        "registerjobdefinition",
        definition,
        "eksProperties.podProperties.securityContext.runAsUser",
        LONG_RULE,
    )
    listed = {"jobDefinitionName": "d", "type": "container", "eksProperties": {"x": [1, 2**64]}}
    reject("registerjobdefinition", listed, "eksProperties.x[1]", LONG_RULE)


def test_a_long_field_takes_64_bits_then_its_own_range() -> None:
    assert field_width(UpdatePolicy, "jobExecutionTimeoutMinutes") == "64-bit Long"
    assert field_width(SubmitJobRequest, "schedulingPriorityOverride") == "32-bit Integer"
    update = {"computeEnvironment": "c", "updatePolicy": {"jobExecutionTimeoutMinutes": 2**40}}
    reject("updatecomputeenvironment", update, "updatePolicy.jobExecutionTimeoutMinutes", "7,200")
