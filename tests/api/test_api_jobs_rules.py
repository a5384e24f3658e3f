"""Field rules of SubmitJob, DescribeJobs, ListJobs, CancelJob(s) and TerminateJob(s)."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.head.api.models import SubmitJobRequest
from tests.api.accepted import accept_keeps
from tests.api.helpers import merged, reject

BASE = {"jobName": "j", "jobQueue": "q", "jobDefinition": "d"}
ARRAY = {"arrayProperties": {"size": 10}}
UUID = "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11"
ARN = "arn:aws:batch:us-east-1:123456789012"


def _overrides(**fields: Any) -> dict[str, Any]:
    return {"containerOverrides": fields}


def _retry(**fields: Any) -> dict[str, Any]:
    return {"retryStrategy": fields}


def _rule(**fields: Any) -> dict[str, Any]:
    return _retry(attempts=2, evaluateOnExit=[fields])


SUBMIT_BAD: list[tuple[dict[str, Any], str, str]] = [
    # names and refs
    ({"jobName": "my job"}, "jobName", 'starting with a letter or digit (got "my job")'),
    ({"jobName": "-lead"}, "jobName", "starting with a letter or digit"),
    ({"jobName": "_lead"}, "jobName", "starting with a letter or digit"),
    ({"jobName": ""}, "jobName", "1-128 characters"),
    ({"jobName": "a" * 129}, "jobName", "1-128 characters"),
    ({"jobName": None}, "jobName", "is required"),
    ({"jobQueue": ""}, "jobQueue", "job queue name"),
    ({"jobQueue": "q:1"}, "jobQueue", "job queue name"),
    ({"jobQueue": f"{ARN}:compute-environment/q"}, "jobQueue", "job-queue/NAME"),
    ({"jobQueue": "arn:aws:s3:::bucket/q"}, "jobQueue", "job queue name"),
    ({"jobDefinition": ""}, "jobDefinition", "job definition name"),
    ({"jobDefinition": "d:0"}, "jobDefinition", "revision a positive integer"),
    ({"jobDefinition": "d:x"}, "jobDefinition", "job definition name"),
    ({"jobDefinition": "d:1:2"}, "jobDefinition", "job definition name"),
    ({"jobDefinition": f"{ARN}:job-queue/d"}, "jobDefinition", "job-definition/NAME"),
    ({"jobDefinition": None}, "jobDefinition", "is required"),
    # arrays
    ({"arrayProperties": {"size": 1}}, "arrayProperties.size", "from 2 to 10,000 (got 1)"),
    ({"arrayProperties": {"size": 10_001}}, "arrayProperties.size", "from 2 to 10,000"),
    ({"arrayProperties": {}}, "arrayProperties.size", "is required"),
    ({"arrayProperties": {"size": "5"}}, "arrayProperties.size", 'must be an integer (got "5")'),
    ({"arrayProperties": 5}, "arrayProperties", "must be an object (got 5)"),
    # dependencies
    ({"dependsOn": [{"jobId": f"j{i}"} for i in range(21)]}, "dependsOn", "at most 20"),
    ({"dependsOn": [{}]}, "dependsOn[0].jobId", "is required for a dependency"),
    ({"dependsOn": [{"type": "N_TO_N"}]}, "dependsOn[0].jobId", "N_TO_N"),
    ({"dependsOn": [{"jobId": ""}]}, "dependsOn[0].jobId", "job ID"),
    ({"dependsOn": [{"jobId": "a b"}]}, "dependsOn[0].jobId", "without spaces"),
    ({"dependsOn": [{"jobId": "x", "type": "ALL"}]}, "dependsOn[0].type", "N_TO_N, SEQUENTIAL"),
    (
        {"dependsOn": [{"jobId": "x"}, {"type": "SEQUENTIAL"}]},
        "dependsOn[1].type",
        "only for array jobs",
    ),
    ({"dependsOn": [{"jobId": "x", "type": "N_TO_N"}]}, "dependsOn[0].type", "array jobs"),
    (
        {**ARRAY, "dependsOn": [{"jobId": "x", "type": "SEQUENTIAL"}]},
        "dependsOn[0].jobId",
        "left out of a SEQUENTIAL",
    ),
    ({"dependsOn": [{"jobId": "x"}, {"jobId": "x"}]}, "dependsOn[1].jobId", "second time"),
    (
        {**ARRAY, "dependsOn": [{"type": "SEQUENTIAL"}, {"type": "SEQUENTIAL"}]},
        "dependsOn[1].type",
        "second time",
    ),
    ({"dependsOn": {"jobId": "x"}}, "dependsOn", "must be a list"),
    # retries
    (_retry(attempts=0), "retryStrategy.attempts", "from 1 to 10 (got 0)"),
    (_retry(attempts=11), "retryStrategy.attempts", "from 1 to 10 (got 11)"),
    (_retry(attempts=2.5), "retryStrategy.attempts", "must be an integer (got 2.5)"),
    (_retry(attempts=True), "retryStrategy.attempts", "must be an integer (got true)"),
    (
        _retry(evaluateOnExit=[{"onExitCode": "1", "action": "EXIT"}]),
        "retryStrategy.attempts",
        "required when evaluateOnExit is given",
    ),
    (
        _retry(attempts=2, evaluateOnExit=[{"onExitCode": "1", "action": "EXIT"}] * 6),
        "retryStrategy.evaluateOnExit",
        "0-5 entries (got 6)",
    ),
    (_rule(onExitCode="1"), "retryStrategy.evaluateOnExit[0].action", "is required"),
    (
        _rule(onExitCode="1", action="RESTART"),
        "retryStrategy.evaluateOnExit[0].action",
        'one of RETRY, EXIT (got "RESTART")',
    ),
    (_rule(action="EXIT"), "retryStrategy.evaluateOnExit[0]", "at least one of onExitCode"),
    (
        _rule(onExitCode="1**", action="EXIT"),
        "retryStrategy.evaluateOnExit[0].onExitCode",
        "digits, optionally ending in a single *",
    ),
    (_rule(onExitCode="*1", action="EXIT"), "retryStrategy.evaluateOnExit[0].onExitCode", "digits"),
    (_rule(onExitCode="-1", action="EXIT"), "retryStrategy.evaluateOnExit[0].onExitCode", "digits"),
    (
        _rule(onExitCode="", action="EXIT"),
        "retryStrategy.evaluateOnExit[0].onExitCode",
        "1-512 characters",
    ),
    (
        _rule(onExitCode="1" * 513, action="EXIT"),
        "retryStrategy.evaluateOnExit[0].onExitCode",
        "1-512 characters",
    ),
    (
        _rule(onReason="Out-of-memory", action="EXIT"),
        "retryStrategy.evaluateOnExit[0].onReason",
        "letters, digits, '.', ':' and white space",
    ),
    (
        _rule(onReason="a*b", action="EXIT"),
        "retryStrategy.evaluateOnExit[0].onReason",
        "optionally ending in a single *",
    ),
    (_rule(onReason="a" * 513, action="EXIT"), "retryStrategy.evaluateOnExit[0].onReason", "1-512"),
    (
        _rule(onStatusReason="Host!", action="EXIT"),
        "retryStrategy.evaluateOnExit[0].onStatusReason",
        "letters, digits",
    ),
    # timeouts and priorities
    (
        {"timeout": {"attemptDurationSeconds": 59}},
        "timeout.attemptDurationSeconds",
        "at least 60 (got 59)",
    ),
    (
        {"timeout": {"attemptDurationSeconds": "600"}},
        "timeout.attemptDurationSeconds",
        "must be an integer",
    ),
    ({"schedulingPriorityOverride": -1}, "schedulingPriorityOverride", "from 0 to 9,999"),
    ({"schedulingPriorityOverride": 10_000}, "schedulingPriorityOverride", "from 0 to 9,999"),
    ({"shareIdentifier": "team-a"}, "shareIdentifier", "letters and digits"),
    ({"shareIdentifier": ""}, "shareIdentifier", "1-255"),
    ({"shareIdentifier": "a" * 256}, "shareIdentifier", "1-255"),
    ({"propagateTags": "true"}, "propagateTags", 'must be true or false (got "true")'),
    # parameters and tags
    ({"parameters": {"": "x"}}, "parameters", "must not be empty"),
    ({"parameters": {"a": 1}}, "parameters.a", "must be a string (got 1)"),
    ({"parameters": ["a"]}, "parameters", "must be an object"),
    ({"tags": {}}, "tags", "1-50 tags (got 0)"),
    ({"tags": {f"k{i}": "v" for i in range(51)}}, "tags", "1-50 tags (got 51)"),
    ({"tags": {"": "v"}}, "tags", "tag keys must be 1-128"),
    ({"tags": {"k" * 129: "v"}}, "tags." + "k" * 129, "tag keys must be 1-128"),
    ({"tags": {"aws:owner": "v"}}, "tags.aws:owner", "reserved for AWS"),
    ({"tags": {"k": "v" * 257}}, "tags.k", "at most 256"),
    # unknown fields
    ({"jobname": "j"}, "jobname", "is not a known parameter of SubmitJob"),
    (_overrides(cmd=["x"]), "containerOverrides.cmd", "is not a known parameter of SubmitJob"),
]

OVERRIDES_BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "x"}]},
        "environment[0].name",
        "the AWS_BATCH_ prefix is reserved for variables hpcbatch sets",
    ),
    (
        {"environment": [{"name": "A"}, {"name": "AWS_BATCHX"}]},
        "environment[1].name",
        "must not start with AWS_BATCH",
    ),
    ({"environment": [{"name": ""}]}, "environment[0].name", "non-empty"),
    ({"environment": [{"value": "v"}]}, "environment[0].name", "is required"),
    ({"environment": [{"name": "A=B"}]}, "environment[0].name", "'='"),
    (
        {"environment": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
        "environment[1].name",
        "second time (environment[0] already sets it)",
    ),
    ({"environment": [{"name": "A", "value": 1}]}, "environment[0].value", "must be a string"),
    ({"environment": [{"name": "A", "value": "a\u0000b"}]}, "environment[0].value", "NUL"),
    (
        {"resourceRequirements": [{"type": "VCPU", "value": "0"}]},
        "resourceRequirements[0].value",
        'positive number of vCPUs such as "2" or "0.25" (got "0")',
    ),
    (
        {"resourceRequirements": [{"type": "VCPU", "value": "-1"}]},
        "resourceRequirements[0].value",
        "positive number of vCPUs",
    ),
    (
        {"resourceRequirements": [{"type": "VCPU", "value": "1e3"}]},
        "resourceRequirements[0].value",
        "positive number of vCPUs",
    ),
    (
        {"resourceRequirements": [{"type": "VCPU", "value": "0.0"}]},
        "resourceRequirements[0].value",
        "positive number of vCPUs",
    ),
    (
        {"resourceRequirements": [{"type": "MEMORY", "value": "3"}]},
        "resourceRequirements[0].value",
        "whole number of MiB, at least 4",
    ),
    (
        {"resourceRequirements": [{"type": "MEMORY", "value": "4.5"}]},
        "resourceRequirements[0].value",
        "whole number of MiB",
    ),
    (
        {"resourceRequirements": [{"type": "GPU", "value": "0"}]},
        "resourceRequirements[0].value",
        "whole number of GPUs, at least 1",
    ),
    (
        {"resourceRequirements": [{"type": "GPU", "value": "1.5"}]},
        "resourceRequirements[0].value",
        "whole number of GPUs",
    ),
    (
        {"resourceRequirements": [{"type": "GPU", "value": "0.5"}]},
        "resourceRequirements[0].value",
        "whole number of GPUs",
    ),
    (
        {"resourceRequirements": [{"type": "GPU", "value": "-1"}]},
        "resourceRequirements[0].value",
        "whole number of GPUs, at least 1",
    ),
    (
        {"resourceRequirements": [{"type": "GPU", "value": 1}]},
        "resourceRequirements[0].value",
        "must be a string (got 1)",
    ),
    (
        {"resourceRequirements": [{"type": "CPU", "value": "1"}]},
        "resourceRequirements[0].type",
        "one of GPU, VCPU, MEMORY",
    ),
    (
        {"resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "GPU", "value": "2"}]},
        "resourceRequirements[1].type",
        "lists GPU a second time",
    ),
    ({"vcpus": 0}, "vcpus", "of at least 1 (got 0)"),
    ({"memory": 3}, "memory", "of at least 4 (got 3)"),
    (
        {"vcpus": 2, "resourceRequirements": [{"type": "VCPU", "value": "2"}]},
        "vcpus",
        "together with a VCPU entry",
    ),
    (
        {"memory": 64, "resourceRequirements": [{"type": "MEMORY", "value": "64"}]},
        "memory",
        "together with a MEMORY entry",
    ),
    ({"command": []}, "command", "at least one entry"),
    ({"command": ["echo", ""]}, "command[1]", "empty string"),
    ({"command": "echo hi"}, "command", "must be a list"),
    ({"command": ["echo", 1]}, "command[1]", "must be a string"),
]


@pytest.mark.parametrize(("patch", "field", "phrase"), SUBMIT_BAD)
def test_submit_rejects(patch: dict[str, Any], field: str, phrase: str) -> None:
    reject("submitjob", merged(BASE, patch), field, phrase)


@pytest.mark.parametrize(("overrides", "field", "phrase"), OVERRIDES_BAD)
def test_container_overrides_reject(overrides: dict[str, Any], field: str, phrase: str) -> None:
    reject(
        "submitjob",
        {**BASE, "containerOverrides": overrides},
        f"containerOverrides.{field}",
        phrase,
    )


@pytest.mark.parametrize(("overrides", "field", "phrase"), OVERRIDES_BAD[:6])
def test_node_overrides_check_container_overrides(
    overrides: dict[str, Any], field: str, phrase: str
) -> None:
    data = {
        **BASE,
        "nodeOverrides": {
            "nodePropertyOverrides": [{"targetNodes": "0:", "containerOverrides": overrides}]
        },
    }
    where = f"nodeOverrides.nodePropertyOverrides[0].containerOverrides.{field}"
    reject("submitjob", data, where, phrase)


@pytest.mark.parametrize(
    ("node_overrides", "field", "phrase"),
    [
        ({"numNodes": 0}, "nodeOverrides.numNodes", "from 1 to 1,000"),
        ({"numNodes": 1001}, "nodeOverrides.numNodes", "from 1 to 1,000"),
        (
            {"nodePropertyOverrides": [{"targetNodes": "x"}]},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            'node range "n", "a:b"',
        ),
        (
            {"nodePropertyOverrides": [{"targetNodes": "3:1"}]},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            "a <= b",
        ),
        (
            {"nodePropertyOverrides": [{"targetNodes": ""}]},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            "node range",
        ),
        (
            {"nodePropertyOverrides": [{}]},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            "is required",
        ),
        (
            {"numNodes": 2, "nodePropertyOverrides": [{"targetNodes": "0:5"}]},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            "numNodes is 2",
        ),
    ],
)
def test_node_overrides_reject(node_overrides: dict[str, Any], field: str, phrase: str) -> None:
    reject("submitjob", {**BASE, "nodeOverrides": node_overrides}, field, phrase)


SUBMIT_GOOD: list[dict[str, Any]] = [
    {"jobName": "A" * 128, "jobQueue": "Q_1-x", "jobDefinition": "d_1-x"},
    {"jobName": "0job", "jobQueue": f"{ARN}:job-queue/q", "jobDefinition": "d:12"},
    {"jobDefinition": f"{ARN}:job-definition/d"},
    {"jobDefinition": f"{ARN}:job-definition/d:7"},
    {"arrayProperties": {"size": 2}},
    {"arrayProperties": {"size": 10_000}, "dependsOn": [{"type": "SEQUENTIAL"}]},
    {**ARRAY, "dependsOn": [{"jobId": UUID, "type": "N_TO_N"}, {"jobId": f"{UUID}:3"}]},
    {"dependsOn": [{"jobId": f"j{i}"} for i in range(20)]},
    _retry(attempts=1),
    _retry(
        attempts=10,
        evaluateOnExit=[
            {"onExitCode": "*", "action": "retry"},
            {"onExitCode": "13*", "onReason": "Essential container*", "action": "Exit"},
            {"onStatusReason": "Host EC2 terminated.", "action": "RETRY"},
            {"onReason": "a\tb:c.d *", "action": "exit"},
            {"onExitCode": "1" * 512, "action": "EXIT"},
        ],
    ),
    {"timeout": {"attemptDurationSeconds": 60}},
    {"timeout": {}},
    {"schedulingPriorityOverride": 0, "shareIdentifier": "teamA*"},
    {"schedulingPriorityOverride": 9999, "shareIdentifier": "a" * 255},
    {"tags": {f"k{i}": "" for i in range(50)}},
    {"parameters": {"a": "", "b": "x y"}, "propagateTags": True},
    _overrides(
        vcpus=2,
        memory=4,
        command=["echo", "hi"],
        instanceType="x",
        environment=[{"name": "A"}, {"name": "AWS_BATC", "value": ""}],
        resourceRequirements=[{"type": "GPU", "value": "8"}],
    ),
    _overrides(
        resourceRequirements=[{"type": "VCPU", "value": "0.25"}, {"type": "MEMORY", "value": "4"}]
    ),
    {
        "nodeOverrides": {
            "numNodes": 3,
            "nodePropertyOverrides": [
                {"targetNodes": ":", "instanceTypes": ["c5"]},
                {"targetNodes": "2"},
            ],
        }
    },
    {
        "eksPropertiesOverride": {"podProperties": {"containers": [{"image": "x"}]}},
        "ecsPropertiesOverride": {"taskProperties": []},
        "consumableResourcePropertiesOverride": {"consumableResourceList": []},
    },
]


def _actions_upper_cased(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as parsed: a retry rule's action is upper-cased (AWS accepts any case)."""
    rules = (data.get("retryStrategy") or {}).get("evaluateOnExit") or []
    upper = [{**rule, "action": rule["action"].upper()} for rule in rules]
    return (
        merged(data, {"retryStrategy": {**data["retryStrategy"], "evaluateOnExit": upper}})
        if rules
        else data
    )


@pytest.mark.parametrize("patch", SUBMIT_GOOD)
def test_submit_accepts(patch: dict[str, Any]) -> None:
    data = merged(BASE, patch)
    parsed = accept_keeps("submitjob", data, _actions_upper_cased(data))
    assert isinstance(parsed, SubmitJobRequest)


def test_retry_actions_are_upper_cased() -> None:
    data = {**BASE, **_rule(onExitCode="1", action="rEtRy")}
    parsed = accept_keeps("submitjob", data, _actions_upper_cased(data))
    assert isinstance(parsed, SubmitJobRequest)
    assert parsed.retryStrategy and parsed.retryStrategy.evaluateOnExit
    assert parsed.retryStrategy.evaluateOnExit[0].action == "RETRY"


def test_timeout_minimum_is_a_parameter() -> None:
    data = {**BASE, "timeout": {"attemptDurationSeconds": 2}}
    accept_keeps("submitjob", data, min_timeout_seconds=1)
    reject(
        "submitjob",
        data,
        "timeout.attemptDurationSeconds",
        "at least 5 (got 2)",
        min_timeout_seconds=5,
    )


# ---------------------------------------------------------------------------------------------
# DescribeJobs, ListJobs, CancelJob, TerminateJob


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({}, "jobs", "is required"),
        ({"jobs": []}, "jobs", "1-100 entries (got 0)"),
        ({"jobs": [f"j{i}" for i in range(101)]}, "jobs", "1-100 entries (got 101)"),
        ({"jobs": ["a", ""]}, "jobs[1]", "job ID"),
        ({"jobs": "a"}, "jobs", "must be a list"),
    ],
)
def test_describe_jobs_rejects(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("describejobs", data, field, phrase)


LIST_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({}, "jobQueue", "give exactly one of jobQueue, arrayJobId or multiNodeJobId"),
    ({"jobQueue": "q", "arrayJobId": UUID}, "arrayJobId", "cannot be combined with jobQueue"),
    ({"arrayJobId": UUID, "multiNodeJobId": UUID}, "multiNodeJobId", "exactly one"),
    ({"jobQueue": "q", "jobStatus": "DONE"}, "jobStatus", "SUBMITTED, PENDING, RUNNABLE"),
    ({"jobQueue": "q", "jobStatus": "running"}, "jobStatus", 'got "running"'),
    ({"jobQueue": "q", "maxResults": 0}, "maxResults", "from 1 to 1,000"),
    ({"jobQueue": "q", "maxResults": 1001}, "maxResults", "from 1 to 1,000"),
    ({"jobQueue": "q", "nextToken": ""}, "nextToken", "not an empty string"),
    ({"jobQueue": "q", "filters": []}, "filters", "1-1 entries"),
    (
        {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["a"]}] * 2},
        "filters",
        "1-1 entries (got 2)",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "STATUS", "values": ["a"]}]},
        "filters[0].name",
        "JOB_NAME, JOB_DEFINITION, BEFORE_CREATED_AT, AFTER_CREATED_AT, SHARE_IDENTIFIER",
    ),
    ({"jobQueue": "q", "filters": [{"name": "JOB_NAME"}]}, "filters[0].values", "is required"),
    (
        {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": []}]},
        "filters[0].values",
        "1-1 entries",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "BEFORE_CREATED_AT", "values": ["yesterday"]}]},
        "filters[0].values[0]",
        "epoch milliseconds",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "AFTER_CREATED_AT", "values": ["-1"]}]},
        "filters[0].values[0]",
        "epoch milliseconds",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["my job"]}]},
        "filters[0].values[0]",
        "must be a job name",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": [""]}]},
        "filters[0].values[0]",
        "must be a job name",
    ),
    (
        {
            "jobQueue": "q",
            "filters": [{"name": "JOB_DEFINITION", "values": [f"{ARN}:job-definition/d:1*"]}],
        },
        "filters[0].values[0]",
        "must not end in * when it is an ARN",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "JOB_DEFINITION", "values": ["d d"]}]},
        "filters[0].values[0]",
        "job definition name",
    ),
    (
        {"jobQueue": "q", "filters": [{"name": "SHARE_IDENTIFIER", "values": [""]}]},
        "filters[0].values[0]",
        "share identifier",
    ),
]


@pytest.mark.parametrize(("data", "field", "phrase"), LIST_BAD)
def test_list_jobs_rejects(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("listjobs", data, field, phrase)


@pytest.mark.parametrize(
    "data",
    [
        {"jobQueue": "q"},
        {"arrayJobId": UUID, "jobStatus": "SUCCEEDED", "maxResults": 1},
        {"multiNodeJobId": UUID, "maxResults": 1000, "nextToken": "opaque=="},
        # AWS ignores jobStatus next to a filter (except SHARE_IDENTIFIER); both are accepted.
        {
            "jobQueue": "q",
            "jobStatus": "FAILED",
            "filters": [{"name": "SHARE_IDENTIFIER", "values": ["teamA"]}],
        },
        {
            "jobQueue": "q",
            "jobStatus": "RUNNING",
            "filters": [{"name": "JOB_NAME", "values": ["Sweep*"]}],
        },
        {"jobQueue": "q", "filters": [{"name": "JOB_NAME", "values": ["*"]}]},
        {"jobQueue": "q", "filters": [{"name": "JOB_DEFINITION", "values": ["train*"]}]},
        {"jobQueue": "q", "filters": [{"name": "JOB_DEFINITION", "values": ["train:3"]}]},
        {
            "jobQueue": "q",
            "filters": [{"name": "JOB_DEFINITION", "values": [f"{ARN}:job-definition/train:3"]}],
        },
        {"jobQueue": "q", "filters": [{"name": "BEFORE_CREATED_AT", "values": ["1700000000000"]}]},
    ],
)
def test_list_jobs_accepts(data: dict[str, Any]) -> None:
    accept_keeps("listjobs", data)


@pytest.mark.parametrize("operation", ["canceljob", "terminatejob"])
@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"jobId": UUID}, "reason", "is required"),
        ({"jobId": UUID, "reason": ""}, "reason", "1-1,024 characters"),
        ({"jobId": UUID, "reason": "x" * 1025}, "reason", "1-1,024 characters"),
        ({"reason": "r"}, "jobId", "is required"),
        ({"jobId": "", "reason": "r"}, "jobId", "job ID"),
    ],
)
def test_cancel_and_terminate_reject(
    operation: str, data: dict[str, Any], field: str, phrase: str
) -> None:
    reject(operation, data, field, phrase)


@pytest.mark.parametrize("operation", ["canceljob", "terminatejob"])
def test_cancel_and_terminate_accept(operation: str) -> None:
    accept_keeps(operation, {"jobId": f"{UUID}:4", "reason": "x" * 1024})


@pytest.mark.parametrize("operation", ["canceljobs", "terminatejobs"])
@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"jobs": [UUID]}, "reason", "is required"),
        ({"jobs": [UUID], "reason": "x" * 1025}, "reason", "1-1,024 characters"),
        ({"reason": "r"}, "jobs", "is required"),
        ({"jobs": [], "reason": "r"}, "jobs", "must have 1-50 entries (got 0)"),
        ({"jobs": [UUID] * 51, "reason": "r"}, "jobs", "must have 1-50 entries (got 51)"),
        ({"jobs": [UUID, 7], "reason": "r"}, "jobs[1]", "must be a string"),
    ],
)
def test_bulk_cancel_and_terminate_reject_as_a_whole(
    operation: str, data: dict[str, Any], field: str, phrase: str
) -> None:
    reject(operation, data, field, phrase)


@pytest.mark.parametrize("operation", ["canceljobs", "terminatejobs"])
def test_bulk_cancel_and_terminate_leave_each_id_to_its_own_answer(operation: str) -> None:
    # A malformed id is that job's own ValidationException in the answer, as AWS reports it.
    accept_keeps(operation, {"jobs": [UUID, f"{UUID}:4", "", "a b"] + [UUID] * 46, "reason": "r"})
