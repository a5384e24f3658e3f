"""Field rules of RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.head.api.models import RegisterJobDefinitionRequest, node_range, parse_target_nodes
from tests.api.accepted import accept_keeps
from tests.api.helpers import merged, reject

ARN = "arn:aws:batch:us-east-1:123456789012"
CONTAINER = {"jobDefinitionName": "d", "type": "container", "containerProperties": {}}


def _multinode(num_nodes: int, *targets: str, main: int = 0) -> dict[str, Any]:
    return {
        "jobDefinitionName": "mpi",
        "type": "multinode",
        "nodeProperties": {
            "numNodes": num_nodes,
            "mainNode": main,
            "nodeRangeProperties": [
                {"targetNodes": target, "container": {"command": ["x"]}} for target in targets
            ],
        },
    }


REGISTER_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"jobDefinitionName": "my def"}, "jobDefinitionName", "letters, digits, hyphens"),
    ({"jobDefinitionName": ""}, "jobDefinitionName", "1-128 characters"),
    ({"jobDefinitionName": "d:1"}, "jobDefinitionName", "letters, digits"),
    ({"jobDefinitionName": None}, "jobDefinitionName", "is required"),
    ({"type": "CONTAINER"}, "type", 'one of container, multinode (got "CONTAINER")'),
    ({"type": None}, "type", "is required"),
    ({"containerProperties": None}, "containerProperties", "required when type is container"),
    (
        {"ecsProperties": {"taskProperties": []}},
        "ecsProperties",
        "cannot be combined with containerProperties",
    ),
    (
        {"nodeProperties": _multinode(1, "0")["nodeProperties"]},
        "nodeProperties",
        "only allowed when type is multinode",
    ),
    ({"schedulingPriority": 10_000}, "schedulingPriority", "from 0 to 9,999"),
    ({"schedulingPriority": -1}, "schedulingPriority", "from 0 to 9,999"),
    ({"platformCapabilities": ["GPU"]}, "platformCapabilities[0]", "EC2, FARGATE"),
    ({"propagateTags": 1}, "propagateTags", "true or false"),
    (
        {"timeout": {"attemptDurationSeconds": 30}},
        "timeout.attemptDurationSeconds",
        "at least 60 (got 30)",
    ),
    ({"retryStrategy": {"attempts": 0}}, "retryStrategy.attempts", "from 1 to 10"),
    ({"tags": {}}, "tags", "1-50 tags"),
    ({"parameters": {"a": None}}, "parameters.a", "must be a string (got null)"),
    ({"containerProperties": {"vcpus": 0}}, "containerProperties.vcpus", "at least 1"),
    ({"containerProperties": {"memory": 2}}, "containerProperties.memory", "at least 4"),
    (
        {"containerProperties": {"memory": "2048"}},
        "containerProperties.memory",
        "must be an integer",
    ),
    (
        {"containerProperties": {"environment": [{"name": "AWS_BATCH_CE_NAME"}]}},
        "containerProperties.environment[0].name",
        "AWS_BATCH_ prefix is reserved",
    ),
    (
        {"containerProperties": {"resourceRequirements": [{"type": "MEMORY", "value": "1g"}]}},
        "containerProperties.resourceRequirements[0].value",
        "whole number of MiB",
    ),
    (
        {"containerProperties": {"command": ["a", ""]}},
        "containerProperties.command[1]",
        "empty string",
    ),
    (
        {"containerProperties": {"privileged": "yes"}},
        "containerProperties.privileged",
        "true or false",
    ),
    (
        {"containerProperties": {"imag": "x"}},
        "containerProperties.imag",
        "is not a known parameter of RegisterJobDefinition",
    ),
]


@pytest.mark.parametrize(("patch", "field", "phrase"), REGISTER_BAD)
def test_register_rejects(patch: dict[str, Any], field: str, phrase: str) -> None:
    reject("registerjobdefinition", merged(CONTAINER, patch), field, phrase)


MULTINODE_BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {**_multinode(2, "0:1"), "containerProperties": {}},
        "containerProperties",
        "not allowed when type is multinode",
    ),
    (
        {**_multinode(2, "0:1"), "nodeProperties": None},
        "nodeProperties",
        "required when type is multinode",
    ),
    (_multinode(0, "0"), "nodeProperties.numNodes", "from 1 to 1,000 (got 0)"),
    (_multinode(1001, "0:"), "nodeProperties.numNodes", "from 1 to 1,000 (got 1001)"),
    (_multinode(4, "0:", main=4), "nodeProperties.mainNode", "less than numNodes (4) (got 4)"),
    (_multinode(4, "0:", main=-1), "nodeProperties.mainNode", "of at least 0"),
    (_multinode(4), "nodeProperties.nodeRangeProperties", "1-5 entries (got 0)"),
    (
        _multinode(6, "0", "1", "2", "3", "4", "5"),
        "nodeProperties.nodeRangeProperties",
        "1-5 entries (got 6)",
    ),
    (
        _multinode(4, "a"),
        "nodeProperties.nodeRangeProperties[0].targetNodes",
        'node range "n", "a:b", ":b", "a:" or ":"',
    ),
    (_multinode(4, "3:1"), "nodeProperties.nodeRangeProperties[0].targetNodes", "a <= b"),
    (_multinode(4, "1:2:3"), "nodeProperties.nodeRangeProperties[0].targetNodes", "node range"),
    (_multinode(4, ""), "nodeProperties.nodeRangeProperties[0].targetNodes", "node range"),
    (_multinode(4, "-1:3"), "nodeProperties.nodeRangeProperties[0].targetNodes", "node range"),
    (
        _multinode(4, "0:1", "3"),
        "nodeProperties.nodeRangeProperties",
        "must cover every node from 0 to 3 exactly once, but no range covers node 2",
    ),
    (_multinode(4, "1:"), "nodeProperties.nodeRangeProperties", "no range covers node 0"),
    (
        _multinode(4, "0:2", "2:"),
        "nodeProperties.nodeRangeProperties[1].targetNodes",
        'covers node 2, which nodeRangeProperties[0] ("0:2") already covers',
    ),
    (_multinode(4, ":", "3"), "nodeProperties.nodeRangeProperties[1].targetNodes", "covers node 3"),
    (
        _multinode(4, "0:4"),
        "nodeProperties.nodeRangeProperties[0].targetNodes",
        "names node 4, but numNodes is 4 so nodes run from 0 to 3",
    ),
    (
        _multinode(4, "0:3", "4:"),
        "nodeProperties.nodeRangeProperties[1].targetNodes",
        "names node 4",
    ),
    (
        _multinode(2, "0:1") | {"type": "container"},
        "containerProperties",
        "required when type is container",
    ),
]


@pytest.mark.parametrize(("data", "field", "phrase"), MULTINODE_BAD)
def test_multinode_rejects(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("registerjobdefinition", merged(data, {}), field, phrase)


@pytest.mark.parametrize(
    "data",
    [
        _multinode(1, "0"),
        _multinode(1, ":"),
        _multinode(3, ":"),
        _multinode(4, ":0", "1:2", "3:", main=3),
        _multinode(5, "0", "1", "2", "3", "4"),
        _multinode(1000, "0", "1:998", "999"),
        _multinode(1000, ":499", "500:"),
    ],
)
def test_multinode_accepts(data: dict[str, Any]) -> None:
    assert isinstance(accept_keeps("registerjobdefinition", data), RegisterJobDefinitionRequest)


@pytest.mark.parametrize(
    "patch",
    [
        {},
        {"containerProperties": {"image": "x", "vcpus": 1, "memory": 4, "command": ["a"]}},
        {"containerProperties": {"resourceRequirements": [{"type": "VCPU", "value": "0.5"}]}},
        {"containerProperties": None, "ecsProperties": {"taskProperties": [{}]}},
        {"containerProperties": None, "eksProperties": {"podProperties": {}}},
        {"platformCapabilities": ["EC2", "FARGATE"], "schedulingPriority": 0},
        {"timeout": {"attemptDurationSeconds": 60}, "propagateTags": False},
        {"consumableResourceProperties": {"consumableResourceList": []}},
    ],
)
def test_register_accepts(patch: dict[str, Any]) -> None:
    accept_keeps("registerjobdefinition", merged(CONTAINER, patch))


def test_register_timeout_minimum_is_a_parameter() -> None:
    data = merged(CONTAINER, {"timeout": {"attemptDurationSeconds": 1}})
    accept_keeps("registerjobdefinition", data, min_timeout_seconds=1)


@pytest.mark.parametrize(
    ("spec", "num_nodes", "nodes"),
    [
        ("3", 8, [3]),
        ("0:2", 8, [0, 1, 2]),
        (":1", 8, [0, 1]),
        ("6:", 8, [6, 7]),
        (":", 3, [0, 1, 2]),
    ],
)
def test_node_range(spec: str, num_nodes: int, nodes: list[int]) -> None:
    assert list(node_range(spec, num_nodes)) == nodes


@pytest.mark.parametrize("spec", ["", "a", "3:1", "1:2:3", " 1", "1-2"])
def test_parse_target_nodes_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_target_nodes(spec)


# ---------------------------------------------------------------------------------------------
# DescribeJobDefinitions, DeregisterJobDefinition


@pytest.mark.parametrize(
    ("data", "field", "phrase"),
    [
        ({"status": "DELETED"}, "status", "ACTIVE, INACTIVE"),
        ({"maxResults": 0}, "maxResults", "from 1 to 100"),
        ({"maxResults": 101}, "maxResults", "from 1 to 100"),
        (
            {"jobDefinitions": [f"d:{i}" for i in range(1, 102)]},
            "jobDefinitions",
            "0-100 entries (got 101)",
        ),
        ({"jobDefinitions": ["d:1", "bad name"]}, "jobDefinitions[1]", "job definition name"),
        (
            {"jobDefinitions": ["d:1"], "status": "ACTIVE"},
            "status",
            "cannot be combined with jobDefinitions",
        ),
        (
            {"jobDefinitions": ["d:1"], "jobDefinitionName": "d"},
            "jobDefinitionName",
            "cannot be combined",
        ),
        ({"jobDefinitionName": "d:1"}, "jobDefinitionName", "letters, digits"),
        ({"nextToken": ""}, "nextToken", "not an empty string"),
    ],
)
def test_describe_definitions_rejects(data: dict[str, Any], field: str, phrase: str) -> None:
    reject("describejobdefinitions", data, field, phrase)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"jobDefinitionName": "d", "status": "INACTIVE", "maxResults": 100, "nextToken": "t"},
        {"jobDefinitions": ["d:1", f"{ARN}:job-definition/d:2", "d"], "maxResults": 1},
    ],
)
def test_describe_definitions_accepts(data: dict[str, Any]) -> None:
    accept_keeps("describejobdefinitions", data)


@pytest.mark.parametrize("ref", ["d", f"{ARN}:job-definition/d", "d:0", "", "d:-1"])
def test_deregister_needs_a_revision(ref: str) -> None:
    reject("deregisterjobdefinition", {"jobDefinition": ref}, "jobDefinition", "name:REVISION")


@pytest.mark.parametrize("ref", ["d:1", f"{ARN}:job-definition/d:42"])
def test_deregister_accepts(ref: str) -> None:
    accept_keeps("deregisterjobdefinition", {"jobDefinition": ref})
