"""Multi-node parallel jobs through boto3 against a real head: definitions survive a restart,
and every AWS rule about nodeProperties and nodeOverrides is a ClientException naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from hpcbatch.core.model import MultiNodeSpec, Resources
from hpcbatch.head.persist import load_state
from hpcbatch.store import SqliteStore
from tests.head.headproc import HeadProcess

NODE_PROPERTIES: dict[str, Any] = {
    "numNodes": 3,
    "mainNode": 0,
    "nodeRangeProperties": [
        {
            "targetNodes": "0",
            "container": {
                "command": ["mpirun", "app"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "256"},
                ],
            },
        },
        {"targetNodes": "1:", "container": {"command": ["sleep", "1"]}},
    ],
}


def register_mpi(head: HeadProcess, name: str = "mpi", **extra: Any) -> dict[str, Any]:
    return dict(
        head.batch().register_job_definition(
            jobDefinitionName=name, type="multinode", nodeProperties=NODE_PROPERTIES, **extra
        )
    )


def refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    assert error["Code"] == "ClientException", error
    return str(error["Message"])


def test_a_multinode_definition_is_stored_and_survives_a_restart(head: HeadProcess) -> None:
    register_mpi(head, retryStrategy={"attempts": 2})
    head.stop()
    store = SqliteStore(head.data_dir / "state.db")
    try:
        stored = load_state(store, "local", "000000000000").definitions["mpi"][1]
    finally:
        store.close()
    assert isinstance(stored.multinode, MultiNodeSpec)
    assert (stored.multinode.num_nodes, stored.multinode.main_node) == (3, 0)
    assert [(r.first, r.last, r.open_end) for r in stored.multinode.ranges] == [
        (0, 0, False),
        (1, 2, True),
    ]
    assert stored.multinode.spec_of(0).resources == Resources(1000, 256, 0)
    assert stored.multinode.spec_of(2).command == ("sleep", "1")
    assert stored.multinode.spec_of(2).retry.attempts == 2
    head.start()
    (described,) = head.batch().describe_job_definitions(jobDefinitionName="mpi")["jobDefinitions"]
    assert described["type"] == "multinode"
    assert described["nodeProperties"] == NODE_PROPERTIES
    assert "containerProperties" not in described


def test_a_new_head_has_a_default_multinode_definition(head: HeadProcess) -> None:
    (described,) = head.batch().describe_job_definitions(jobDefinitions=["default-multinode"])[
        "jobDefinitions"
    ]
    assert (described["type"], described["revision"]) == ("multinode", 1)
    assert described["nodeProperties"] == {
        "numNodes": 1,
        "mainNode": 0,
        "nodeRangeProperties": [
            {
                "targetNodes": "0:",
                "container": {
                    "command": ["true"],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "1"},
                        {"type": "MEMORY", "value": "512"},
                    ],
                },
            }
        ],
    }
    head.stop()
    head.start()  # created once, not again on each start
    revisions = head.batch().describe_job_definitions(jobDefinitionName="default-multinode")
    assert len(revisions["jobDefinitions"]) == 1


def _node_properties(num_nodes: int, *targets: str, main: int = 0) -> dict[str, Any]:
    ranges = [{"targetNodes": t, "container": {"command": ["x"]}} for t in targets]
    return {"numNodes": num_nodes, "mainNode": main, "nodeRangeProperties": ranges}


@pytest.mark.parametrize(
    ("properties", "field", "phrase"),
    [
        (_node_properties(2, "0-1"), "nodeRangeProperties[0].targetNodes", "node range"),
        (_node_properties(2, "1:0"), "nodeRangeProperties[0].targetNodes", "a <= b"),
        (_node_properties(4, "0:2", "2:"), "nodeRangeProperties[1].targetNodes", "covers node 2"),
        (_node_properties(4, "0", "2:"), "nodeRangeProperties", "no range covers node 1"),
        (_node_properties(2, "0:", main=2), "mainNode", "less than numNodes (2)"),
        (_node_properties(2, "0:5"), "nodeRangeProperties[0].targetNodes", "names node 5"),
    ],
)
def test_bad_node_properties_are_refused_naming_the_field(
    head: HeadProcess, properties: dict[str, Any], field: str, phrase: str
) -> None:
    message = refused(
        head.batch().register_job_definition,
        jobDefinitionName="bad",
        type="multinode",
        nodeProperties=properties,
    )
    assert f"nodeProperties.{field}" in message and phrase in message, message


def _submit_overrides(head: HeadProcess, **request: Any) -> str:
    return refused(
        head.batch().submit_job,
        jobName="j",
        jobQueue="default",
        jobDefinition="default-multinode",
        **request,
    )


@pytest.mark.parametrize(
    ("request_fields", "field", "phrase"),
    [
        (
            {"nodeOverrides": {"nodePropertyOverrides": [{"targetNodes": "x"}]}},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            "node range",
        ),
        (
            {"nodeOverrides": {"numNodes": 2, "nodePropertyOverrides": [{"targetNodes": "3"}]}},
            "nodeOverrides.nodePropertyOverrides[0].targetNodes",
            "names node 3",
        ),
        (
            {
                "nodeOverrides": {
                    "nodePropertyOverrides": [{"targetNodes": "0:", "instanceTypes": ["c5"]}]
                }
            },
            "nodeOverrides.nodePropertyOverrides[0].instanceTypes",
            "not supported",
        ),
        (
            {"nodeOverrides": {"numNodes": 2}, "arrayProperties": {"size": 2}},
            "arrayProperties",
            "array jobs cannot be multinode",
        ),
        (
            {"nodeOverrides": {"numNodes": 2}, "containerOverrides": {"command": ["x"]}},
            "containerOverrides",
            "cannot be combined with nodeOverrides",
        ),
    ],
)
def test_bad_node_overrides_are_refused_naming_the_field(
    head: HeadProcess, request_fields: dict[str, Any], field: str, phrase: str
) -> None:
    message = _submit_overrides(head, **request_fields)
    assert field in message and phrase in message, message
