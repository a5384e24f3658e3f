"""Requests about job definitions: Register, Describe, Deregister; and node ranges.

Vocabulary: a *job definition* is a named, revisioned template for jobs; its *type* is
``container`` (one process) or ``multinode`` (one process per node of a multi-node parallel job);
a *node range* (``targetNodes``) names node indexes as ``"n"``, ``"a:b"``, ``":b"``, ``"a:"`` or
``":"``, both ends inclusive, an open end meaning the first or last node.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, model_validator

from hpcbatch.head.api.models.common import (
    AwsModel,
    DefinitionRef,
    DefinitionRevisionRef,
    DescribeMaxResults,
    Loose,
    Name,
    NextToken,
    Parameters,
    StringList,
    Tags,
    fail,
    int_range,
    list_size,
    one_of,
    shown,
)
from hpcbatch.head.api.models.consumables import ConsumableResourceProperties
from hpcbatch.head.api.models.containers import ContainerProperties, JobTimeout, RetryStrategy

MAX_NODES = 1000
MAX_NODE_RANGES = 5
SchedulingPriority = Annotated[int, int_range(0, 9999)]

# ---------------------------------------------------------------------------------------------
# Node ranges

_TARGET_NODES_RE = re.compile(r"(?P<start>[0-9]+)?(?P<colon>:)?(?P<end>[0-9]+)?")
TARGET_NODES_RULE = 'must be a node range "n", "a:b", ":b", "a:" or ":" of node indexes with a <= b'


def parse_target_nodes(spec: str) -> tuple[int | None, int | None]:
    """``(first, last)`` node of a range, None for an open end; raises ValueError if malformed.

    ``"3"`` -> (3, 3); ``"0:3"`` -> (0, 3); ``":3"`` -> (None, 3); ``"2:"`` -> (2, None).
    """
    match = _TARGET_NODES_RE.fullmatch(spec)
    if not spec or not match or (match["colon"] is None and match["start"] is None):
        raise ValueError(f"malformed node range {spec!r}")
    start = int(match["start"]) if match["start"] is not None else None
    end = int(match["end"]) if match["end"] is not None else None
    if match["colon"] is None:
        end = start
    if start is not None and end is not None and start > end:
        raise ValueError(f"node range {spec!r} starts after it ends")
    return start, end


def node_range(spec: str, num_nodes: int) -> range:
    """The node indexes a well-formed ``targetNodes`` covers in a job of ``num_nodes`` nodes."""
    start, end = parse_target_nodes(spec)
    first = 0 if start is None else start
    last = num_nodes - 1 if end is None else end
    return range(first, min(last, num_nodes - 1) + 1)


def _check_target_nodes(spec: str) -> str:
    try:
        parse_target_nodes(spec)
    except ValueError:
        fail(f"{TARGET_NODES_RULE} {shown(spec)}")
    return spec


TargetNodes = Annotated[str, AfterValidator(_check_target_nodes)]


def check_range_fits(spec: str, num_nodes: int, at: str) -> None:
    """Every node a range names must exist: indexes run from 0 to ``num_nodes - 1``."""
    named = [index for index in parse_target_nodes(spec) if index is not None]
    highest = max(named, default=0)
    if highest >= num_nodes:
        fail(
            f"names node {highest}, but numNodes is {num_nodes} so nodes run from 0 to "
            f"{num_nodes - 1} {shown(spec)}",
            at,
        )


# ---------------------------------------------------------------------------------------------
# Multi-node properties


class NodeRangeProperty(AwsModel):
    targetNodes: TargetNodes
    container: ContainerProperties | None = None
    instanceTypes: StringList | None = None
    ecsProperties: Loose | None = None
    eksProperties: Loose | None = None
    consumableResourceProperties: ConsumableResourceProperties | None = None


class NodeProperties(AwsModel):
    numNodes: Annotated[int, int_range(1, MAX_NODES)]
    mainNode: Annotated[int, int_range(0)]
    nodeRangeProperties: Annotated[list[NodeRangeProperty], list_size(1, MAX_NODE_RANGES)]

    @model_validator(mode="after")
    def _ranges_cover_nodes(self) -> NodeProperties:
        if self.mainNode >= self.numNodes:
            fail(f"must be less than numNodes ({self.numNodes}) (got {self.mainNode})", "mainNode")
        _check_exact_cover(self.nodeRangeProperties, self.numNodes)
        return self


def _check_exact_cover(ranges: list[NodeRangeProperty], num_nodes: int) -> None:
    """Each node 0..num_nodes-1 must fall in exactly one range.

    AWS also lets a narrower range nest inside a wider one and override it; hpcbatch asks for a
    plain partition so that which properties a node gets never depends on a precedence rule.
    """
    owner: dict[int, int] = {}
    for index, entry in enumerate(ranges):
        at = f"nodeRangeProperties[{index}].targetNodes"
        check_range_fits(entry.targetNodes, num_nodes, at)
        for node in node_range(entry.targetNodes, num_nodes):
            if node in owner:
                first = owner[node]
                fail(
                    f"covers node {node}, which nodeRangeProperties[{first}] "
                    f'("{ranges[first].targetNodes}") already covers; every node must be '
                    "covered exactly once",
                    at,
                )
            owner[node] = index
    for node in range(num_nodes):
        if node not in owner:
            fail(
                f"must cover every node from 0 to {num_nodes - 1} exactly once, but no range "
                f"covers node {node}",
                "nodeRangeProperties",
            )


# ---------------------------------------------------------------------------------------------
# Requests


class RegisterJobDefinitionRequest(AwsModel):
    jobDefinitionName: Name
    type: Annotated[str, one_of("container", "multinode")]
    parameters: Parameters | None = None
    schedulingPriority: SchedulingPriority | None = None
    containerProperties: ContainerProperties | None = None
    nodeProperties: NodeProperties | None = None
    retryStrategy: RetryStrategy | None = None
    propagateTags: bool | None = None
    timeout: JobTimeout | None = None
    tags: Tags | None = None
    platformCapabilities: (
        list[Annotated[str, one_of("EC2", "FARGATE", "MANAGED_INSTANCES")]] | None
    ) = None
    eksProperties: Loose | None = None
    ecsProperties: Loose | None = None
    consumableResourceProperties: ConsumableResourceProperties | None = None

    @model_validator(mode="after")
    def _properties_fit_type(self) -> RegisterJobDefinitionRequest:
        if self.type == "container":
            _check_container_type(self)
        else:
            _check_multinode_type(self)
        return self


_CONTAINER_KINDS = ("containerProperties", "ecsProperties", "eksProperties")


def _check_container_type(request: RegisterJobDefinitionRequest) -> None:
    # AWS: "If the value is container, then one of the following is required:
    # containerProperties, ecsProperties, or eksProperties."
    given = [name for name in _CONTAINER_KINDS if getattr(request, name) is not None]
    if not given:
        fail("is required when type is container", "containerProperties")
    if len(given) > 1:
        fail(f"cannot be combined with {given[0]}: give exactly one", given[1])
    if request.nodeProperties is not None:
        fail("is only allowed when type is multinode", "nodeProperties")


def _check_multinode_type(request: RegisterJobDefinitionRequest) -> None:
    if request.nodeProperties is None:
        fail("is required when type is multinode", "nodeProperties")
    for name in _CONTAINER_KINDS:
        if getattr(request, name) is not None:
            fail(
                "is not allowed when type is multinode: give it per node range in "
                "nodeProperties.nodeRangeProperties",
                name,
            )


class DescribeJobDefinitionsRequest(AwsModel):
    jobDefinitions: Annotated[list[DefinitionRef], list_size(0, 100)] | None = None
    maxResults: DescribeMaxResults | None = None
    jobDefinitionName: Name | None = None
    status: Annotated[str, one_of("ACTIVE", "INACTIVE")] | None = None
    nextToken: NextToken | None = None

    @model_validator(mode="after")
    def _definitions_alone(self) -> DescribeJobDefinitionsRequest:
        # AWS: jobDefinitions "can't be used with other parameters" (paging aside).
        if self.jobDefinitions is not None:
            for name in ("jobDefinitionName", "status"):
                if getattr(self, name) is not None:
                    fail("cannot be combined with jobDefinitions", name)
        return self


class DeregisterJobDefinitionRequest(AwsModel):
    jobDefinition: DefinitionRevisionRef
