"""DescribeJobs and ListJobs shapes of a multi-node job, read back through botocore's own
response parser (which keeps only members AWS's service model defines): the parent shows
``nodeProperties`` as its nodes run, each node ``<parent>#<i>`` its ``nodeDetails``."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
from botocore.parsers import create_parser

from hpcbatch.core.model import (
    Attempt,
    Job,
    JobSpec,
    JobStatus,
    MultiNodeSpec,
    NodeRange,
    Resources,
    node_job_id,
)
from hpcbatch.core.state import State
from hpcbatch.head.api import models as m
from hpcbatch.head.api import shapes
from hpcbatch.head.api.operations import list_owner

SERVICE = botocore.session.get_session().get_service_model("batch")
PARSER = create_parser("rest-json")

MAIN = JobSpec(("mpirun", "app"), (("A", "1"),), Resources(2000, 1024, 0), user="nobody")
WORKER = JobSpec(("sleep", "9"))
MULTINODE = MultiNodeSpec(3, 1, (NodeRange(0, 0, WORKER), NodeRange(1, 2, MAIN, open_end=True)))


def _state() -> State:
    state = State()
    parent = Job("p", "mpi", "q", "arn:def/mpi:1", 1, 5, JobSpec(()), multinode=MULTINODE)
    parent.status = JobStatus.RUNNING
    state.add_job(parent)
    for index in range(3):
        node = Job(
            node_job_id("p", index),
            "mpi",
            "q",
            "arn:def/mpi:1",
            1,
            5,
            MULTINODE.spec_of(index),
            parent_id="p",
            node_index=index,
            status=JobStatus.RUNNING,
        )
        node.attempts.append(
            Attempt(1, f"host{index}", 1000, 512, (), log_stream=f"log/{index}", started_at=6)
        )
        state.add_job(node)
    state.add_job(Job("c", "one", "q", "arn:def/d:1", 2, 5, WORKER))
    return state


def _parsed(operation: str, document: dict[str, Any]) -> dict[str, Any]:
    shape = SERVICE.operation_model(operation).output_shape
    response = {"body": json.dumps(document).encode(), "headers": {}, "status_code": 200}
    return dict(PARSER.parse(response, shape))


def _describe(state: State, job_id: str) -> dict[str, Any]:
    document = {"jobs": [shapes.job_detail(state, state.jobs[job_id])]}
    return dict(_parsed("DescribeJobs", document)["jobs"][0])


def test_a_multinode_parent_shows_its_node_properties() -> None:
    job = _describe(_state(), "p")
    assert job["nodeProperties"] == {
        "numNodes": 3,
        "mainNode": 1,
        "nodeRangeProperties": [
            {
                "targetNodes": "0",
                "container": {
                    "command": ["sleep", "9"],
                    "environment": [],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "1"},
                        {"type": "MEMORY", "value": "512"},
                    ],
                },
            },
            {
                "targetNodes": "1:",
                "container": {
                    "command": ["mpirun", "app"],
                    "environment": [{"name": "A", "value": "1"}],
                    "resourceRequirements": [
                        {"type": "VCPU", "value": "2"},
                        {"type": "MEMORY", "value": "1024"},
                    ],
                    "user": "nobody",
                },
            },
        ],
    }
    assert "nodeDetails" not in job
    assert "container" not in job  # the parent runs nothing itself


def test_each_node_shows_its_index_role_and_attempts() -> None:
    state = _state()
    for index in range(3):
        job = _describe(state, f"p#{index}")
        assert job["nodeDetails"] == {"nodeIndex": index, "isMainNode": index == 1}
        assert "nodeProperties" not in job
        assert job["container"]["command"] == list(MULTINODE.spec_of(index).command)
        assert job["container"]["logStreamName"] == f"log/{index}"
        container = job["attempts"][0]["container"]
        assert container["containerInstanceArn"] == state.arn("node", f"host{index}")
        assert container["taskArn"] == state.arn("attempt", f"p#{index}/1")
        assert job["container"]["taskArn"] == container["taskArn"]


def test_a_plain_job_has_no_node_members() -> None:
    job = _describe(_state(), "c")
    assert "nodeProperties" not in job and "nodeDetails" not in job


def test_job_summaries_carry_node_properties_summary() -> None:
    state = _state()
    summaries = [shapes.job_summary(state, state.jobs[i]) for i in ("p", "p#0", "p#1", "c")]
    parsed = _parsed("ListJobs", {"jobSummaryList": summaries})["jobSummaryList"]
    assert [s.get("nodeProperties") for s in parsed] == [
        {"numNodes": 3},
        {"isMainNode": False, "numNodes": 3, "nodeIndex": 0},
        {"isMainNode": True, "numNodes": 3, "nodeIndex": 1},
        None,
    ]
    # the parent asks for every node's vCPUs: 1 (worker) + 2 x 2 (main range); a node its own
    assert [s["capacityUsage"][0]["quantity"] for s in parsed[:3]] == [5.0, 1.0, 2.0]


def _owner(state: State, **scope: str) -> str | None:
    request = m.ListJobsRequest.model_validate(scope)
    return list_owner(state, request)


def test_list_jobs_by_multinode_job_id_reads_the_parents_nodes() -> None:
    state = _state()
    owner = _owner(state, multiNodeJobId="p")
    assert owner == "p"
    assert list(state.listing[owner][JobStatus.RUNNING]) == ["p#0", "p#1", "p#2"]
    assert _owner(state, arrayJobId="p") is None  # not an array job
    assert _owner(state, multiNodeJobId="c") is None  # not a multi-node job
    assert _owner(state, multiNodeJobId="nope") is None
