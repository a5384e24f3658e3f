"""Multi-node jobs run through a real head: SubmitJob nodeOverrides against a multinode
definition, DescribeJobs/ListJobs of the parent and its nodes <parent>#<i>, the CLI's --nodes
and node table, and the rules that need the definition (ClientException naming the field)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))


def _submit(head: HeadProcess, definition: str, **request: Any) -> str:
    reply = head.batch().submit_job(
        jobName="mpi", jobQueue="default", jobDefinition=definition, **request
    )
    return str(reply["jobId"])


def _refused(head: HeadProcess, definition: str, **request: Any) -> str:
    with pytest.raises(ClientError) as caught:
        _submit(head, definition, **request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ClientException", error
    return str(error["Message"])


def test_a_two_node_job_is_described_and_listed_node_by_node(
    head: HeadProcess, tmp_path: Path
) -> None:
    mark = tmp_path / "main-ran"
    # The other node ends only once the main node has run, whatever the start order.
    wait_main = f"while [ ! -e {mark} ]; do sleep 0.05; done"
    overrides = {
        "numNodes": 2,
        "nodePropertyOverrides": [
            {"targetNodes": "0", "containerOverrides": {"command": ["touch", str(mark)]}},
            {"targetNodes": "1:", "containerOverrides": {"command": ["sh", "-c", wait_main]}},
        ],
    }
    parent = _submit(head, "default-multinode", nodeOverrides=overrides)
    done = head.wait_status(parent, "SUCCEEDED", "FAILED")
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    assert done["nodeProperties"]["numNodes"] == 2
    assert done["nodeProperties"]["mainNode"] == 0
    ranges = done["nodeProperties"]["nodeRangeProperties"]
    assert [(r["targetNodes"], r["container"]["command"][0]) for r in ranges] == [
        ("0", "touch"),
        ("1:", "sh"),  # an open range stays open, as it was given
    ]
    assert "nodeDetails" not in done
    batch = head.batch()
    listed = batch.list_jobs(multiNodeJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(j["jobId"] for j in listed) == [f"{parent}#0", f"{parent}#1"]
    assert {j["nodeProperties"]["nodeIndex"] for j in listed} == {0, 1}
    nodes = batch.describe_jobs(jobs=[f"{parent}#0", f"{parent}#1"])["jobs"]
    assert [n["nodeDetails"] for n in nodes] == [
        {"nodeIndex": 0, "isMainNode": True},
        {"nodeIndex": 1, "isMainNode": False},
    ]
    for node in nodes:
        assert node["status"] == "SUCCEEDED"
        assert node["container"]["logStreamName"]
    # The other node may have been stopped when the main node ended: only the main's code is sure.
    assert nodes[0]["attempts"][-1]["container"]["exitCode"] == 0


def test_rules_that_need_the_definition(head: HeadProcess) -> None:
    message = _refused(head, "default", nodeOverrides={"numNodes": 2})
    assert "nodeOverrides" in message, message
    head.batch().register_job_definition(
        jobDefinitionName="closed",
        type="multinode",
        nodeProperties={
            "numNodes": 2,
            "mainNode": 1,
            "nodeRangeProperties": [
                {"targetNodes": "0", "container": {"command": ["true"]}},
                {"targetNodes": "1", "container": {"command": ["true"]}},
            ],
        },
    )
    message = _refused(head, "closed", nodeOverrides={"numNodes": 3})
    assert "numNodes" in message, message
    message = _refused(head, "closed", nodeOverrides={"numNodes": 1})
    assert "mainNode" in message or "numNodes" in message, message


def test_cli_submit_nodes_and_describe_the_node_table(head: HeadProcess, tmp_path: Path) -> None:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    mark = tmp_path / "main-ran"
    # Every node runs this; the others end only once the main node (0) has run.
    script = (
        f'if [ "$AWS_BATCH_JOB_NODE_INDEX" = 0 ]; then touch {mark}; '
        f"else while [ ! -e {mark} ]; do sleep 0.05; done; fi"
    )
    done = subprocess.run(
        [HPCBATCH, "submit", "--nodes", "2", "--wait", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    parent = done.stdout.strip()
    described = subprocess.run(
        [HPCBATCH, "describe", parent], capture_output=True, text=True, env=env, timeout=60
    )
    assert "2 nodes, main node 0" in described.stdout
    rows = [line.split() for line in described.stdout.splitlines() if "SUCCEEDED" in line]
    assert [row[:2] for row in rows if row[0] in ("0", "1")] == [["0", "main"], ["1", "-"]]
