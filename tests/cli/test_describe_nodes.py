"""``hpcbatch describe`` of a multi-node job: the parent lists each node (index, main or not,
host, state, exit code); a node says which node of which job it is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import Answer, Recorded, StubHead, job

PARENT = job(
    "P",
    "RUNNING",
    jobName="mpi",
    nodeProperties={"numNodes": 3, "mainNode": 1, "nodeRangeProperties": []},
)


def _node(index: int, status: str, host: str | None, exit_code: int | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"nodeDetails": {"nodeIndex": index, "isMainNode": index == 1}}
    if host is not None:
        extra["attempts"] = [{"container": {"containerInstanceArn": host}}]
        extra["hpcbatch"] = {"node": host}
    if exit_code is not None:
        extra["container"] = {"exitCode": exit_code}
    return job(f"P#{index}", status, **extra)


NODES = {
    "P#0": _node(0, "SUCCEEDED", "devhost-a", 0),
    "P#1": _node(1, "RUNNING", "devhost-b", None),
    "P#2": _node(2, "FAILED", None, 137),
}


def _describe(request: Recorded) -> Answer:
    known = {"P": PARENT, **NODES}
    return 200, {"jobs": [known[i] for i in request.body["jobs"] if i in known]}


def test_a_multinode_parent_lists_its_nodes(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobs", _describe)
    assert main(["describe", "-e", stub.endpoint, "P"]) == 0
    out = capsys.readouterr().out
    assert "3 nodes, main node 1" in out
    rows = [line.split() for line in out.splitlines()[-4:]]
    assert rows == [
        ["NODE", "ROLE", "HOST", "STATE", "EXIT"],
        ["0", "-", "devhost-a", "SUCCEEDED", "0"],
        ["1", "main", "devhost-b", "RUNNING", "-"],
        ["2", "-", "-", "FAILED", "137"],
    ]
    assert stub.calls()[1].body == {"jobs": ["P#0", "P#1", "P#2"]}


def test_a_node_says_which_node_of_which_job_it_is(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobs", _describe)
    assert main(["describe", "-e", stub.endpoint, "P#1"]) == 0
    assert "node 1 of P (main node)" in capsys.readouterr().out
    assert len(stub.calls()) == 1  # a node has no nodes of its own to fetch


def test_json_of_a_multinode_parent_carries_its_nodes_beside_the_aws_answer(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobs", _describe)
    assert main(["describe", "-e", stub.endpoint, "-o", "json", "P"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["jobs"] == [PARENT]  # AWS's job document unchanged
    assert document["nodes"] == {"P": [NODES["P#0"], NODES["P#1"], NODES["P#2"]]}
    assert stub.calls()[1].body == {"jobs": ["P#0", "P#1", "P#2"]}


def test_json_of_jobs_without_nodes_has_no_nodes_key(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobs", _describe)
    assert main(["describe", "-e", stub.endpoint, "-o", "json", "P#1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [found["jobId"] for found in document["jobs"]] == ["P#1"]
    assert "nodes" not in document
    assert len(stub.calls()) == 1
