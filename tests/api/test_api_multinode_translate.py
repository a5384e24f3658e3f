"""Multi-node requests become core values: nodeProperties -> MultiNodeSpec, nodeOverrides ->
NodeOverrides, each range's container translated as a containerProperties would be."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import MultiNodeSpec, NodeRange, Resources, RetryStrategy
from hpcbatch.errors import ValidationError
from hpcbatch.head.api import models as m
from hpcbatch.head.api import translate
from tests.api.helpers import accept

MPI: dict[str, Any] = {
    "jobDefinitionName": "mpi",
    "type": "multinode",
    "retryStrategy": {"attempts": 2},
    "timeout": {"attemptDurationSeconds": 600},
    "schedulingPriority": 7,
    "nodeProperties": {
        "numNodes": 4,
        "mainNode": 1,
        "nodeRangeProperties": [
            {
                "targetNodes": "1:",
                "container": {
                    "command": ["worker"],
                    "resourceRequirements": [{"type": "VCPU", "value": "2"}],
                },
            },
            {
                "targetNodes": "0",
                "container": {
                    "command": ["mpirun", "app"],
                    "environment": [{"name": "A", "value": "1"}],
                    "memory": 2048,
                    "user": "nobody",
                },
            },
        ],
    },
}


def _register(data: dict[str, Any]) -> ev.RegisterJobDefinition:
    event = translate.register_definition(accept("RegisterJobDefinition", data), "c", 1)
    assert isinstance(event, ev.RegisterJobDefinition)
    return event


def test_node_ranges_become_a_multinode_spec_in_node_order() -> None:
    event = _register(MPI)
    multinode = event.multinode
    assert isinstance(multinode, MultiNodeSpec)
    assert (multinode.num_nodes, multinode.main_node) == (4, 1)
    assert [(r.first, r.last, r.open_end) for r in multinode.ranges] == [
        (0, 0, False),
        (1, 3, True),
    ]
    main, workers = multinode.ranges
    assert main.spec.command == ("mpirun", "app")
    assert main.spec.environment == (("A", "1"),)
    assert main.spec.resources == Resources(1000, 2048, 0)
    assert main.spec.user == "nobody"
    assert workers.spec.command == ("worker",)
    assert workers.spec.resources == Resources(2000, 512, 0)
    # Every range carries the job-level fields, so spec_of(i) is what node i runs under.
    for node_range in multinode.ranges:
        spec = node_range.spec
        assert (spec.retry, spec.timeout_s, spec.priority) == (RetryStrategy(2), 600, 7)
    # The definition's own spec holds the job-level fields and no command.
    assert event.spec.command == ()
    assert (event.spec.retry.attempts, event.spec.timeout_s, event.spec.priority) == (2, 600, 7)


def test_a_container_definition_has_no_multinode_spec() -> None:
    event = _register(
        {"jobDefinitionName": "d", "type": "container", "containerProperties": {"command": ["x"]}}
    )
    assert event.multinode is None
    assert event.spec.command == ("x",)


def test_open_ranges_resolve_against_num_nodes() -> None:
    data = {
        "jobDefinitionName": "mpi",
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 3,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": ":", "container": {"command": ["x"]}}],
        },
    }
    multinode = _register(data).multinode
    assert multinode is not None
    assert [(r.first, r.last, r.open_end) for r in multinode.ranges] == [(0, 2, True)]
    assert isinstance(multinode.ranges[0], NodeRange)


SUBMIT: dict[str, Any] = {"jobName": "j", "jobQueue": "q", "jobDefinition": "mpi"}


def _overrides(node_overrides: dict[str, Any], **extra: Any) -> ev.NodeOverrides | None:
    request = accept("SubmitJob", {**SUBMIT, "nodeOverrides": node_overrides, **extra})
    assert isinstance(request, m.SubmitJobRequest)
    return translate.node_overrides(request)


def test_node_overrides_become_core_node_overrides() -> None:
    overrides = _overrides(
        {
            "numNodes": 6,
            "nodePropertyOverrides": [
                {
                    "targetNodes": "0",
                    "containerOverrides": {
                        "command": ["mpirun", "a"],
                        "environment": [{"name": "X", "value": "1"}],
                        "resourceRequirements": [
                            {"type": "VCPU", "value": "0.5"},
                            {"type": "MEMORY", "value": "64"},
                            {"type": "GPU", "value": "1"},
                        ],
                    },
                },
                {"targetNodes": "1:", "containerOverrides": {"vcpus": 2, "memory": 128}},
                {"targetNodes": ":3"},
            ],
        }
    )
    assert overrides == ev.NodeOverrides(
        6,
        (
            ev.NodeRangeOverride(0, 0, ("mpirun", "a"), (("X", "1"),), 500, 64, 1),
            ev.NodeRangeOverride(1, None, None, (), 2000, 128, None),
            ev.NodeRangeOverride(None, 3),
        ),
    )


def test_a_submit_without_node_overrides_has_none() -> None:
    request = accept("SubmitJob", SUBMIT)
    assert isinstance(request, m.SubmitJobRequest)
    assert translate.node_overrides(request) is None


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"instanceTypes": ["c5.large"]}, "instanceTypes"),
        ({"ecsPropertiesOverride": {}}, "ecsPropertiesOverride"),
        ({"eksPropertiesOverride": {}}, "eksPropertiesOverride"),
        ({"containerOverrides": {"instanceType": "c5.large"}}, "containerOverrides.instanceType"),
    ],
)
def test_unsupported_override_fields_are_refused_by_name(
    override: dict[str, Any], field: str
) -> None:
    entry = {"targetNodes": "0:", **override}
    with pytest.raises(ValidationError) as caught:
        _overrides({"nodePropertyOverrides": [{"targetNodes": "0"}, entry]})
    assert caught.value.field == f"nodeOverrides.nodePropertyOverrides[1].{field}"
    assert "not supported" in caught.value.rule


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"arrayProperties": {"size": 2}}, "arrayProperties"),
        ({"containerOverrides": {"command": ["x"]}}, "containerOverrides"),
    ],
)
def test_node_overrides_exclude_arrays_and_container_overrides(
    extra: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _overrides({"numNodes": 2}, **extra)
    assert caught.value.field == field
    assert "cannot be combined with nodeOverrides" in caught.value.rule
