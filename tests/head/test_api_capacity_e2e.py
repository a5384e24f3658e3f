"""Compute environments made through the API run jobs, as AWS users expect: a LOCAL CE gets its
own virtual node on the head's machine, sized by maxvCpus, kept across a head restart; cloud
kinds and a node bigger than the machine are refused saying why. A real head, boto3, aws CLI."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess, wait_for

CPUS = len(os.sched_getaffinity(0))


@pytest.fixture
def head(tmp_path: Path) -> Iterator[HeadProcess]:
    process = HeadProcess(tmp_path / "head", nodes=1, vcpus=1, memory=1024)
    try:
        yield process.start()
    finally:
        process.cleanup()


def _refusal(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert raised.value.response["Error"]["Code"] == "ClientException"
    return str(raised.value.response["Error"]["Message"])


def _ce(head: HeadProcess, name: str) -> dict[str, Any]:
    (ce,) = head.batch().describe_compute_environments(computeEnvironments=[name])[
        "computeEnvironments"
    ]
    return dict(ce)


def _valid(head: HeadProcess, name: str) -> dict[str, Any] | None:
    ce = _ce(head, name)
    return ce if ce["status"] == "VALID" else None


def _node(head: HeadProcess, name: str) -> dict[str, Any] | None:
    nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
    return next((n for n in nodes if n["name"] == name), None)


def _run(head: HeadProcess, queue: str) -> dict[str, Any]:
    job = head.batch().submit_job(jobName="j", jobQueue=queue, jobDefinition="sleepy")
    head.wait_status(job["jobId"], "SUCCEEDED", "FAILED")
    return head.raw_describe(job["jobId"])


def test_the_aws_sequence_runs_a_job_on_the_ces_own_node_and_survives_a_restart(
    head: HeadProcess,
) -> None:
    b = head.batch()
    vcpus = min(2, CPUS)
    b.create_compute_environment(
        computeEnvironmentName="mine",
        type="MANAGED",
        computeResources={
            "type": "LOCAL",
            "maxvCpus": vcpus,
            "subnets": ["subnet-1"],  # AWS-only: kept and echoed, never checked
            "instanceRole": "ecsInstanceRole",
        },
    )
    b.create_job_queue(
        jobQueueName="q",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "mine"}],
    )
    b.register_job_definition(
        jobDefinitionName="sleepy",
        type="container",
        containerProperties={
            "command": ["sh", "-c", "echo hello"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "64"},
            ],
        },
    )
    ce = wait_for(lambda: _valid(head, "mine"), 30, "CE mine to be VALID")
    resources = ce["computeResources"]
    assert (resources["maxvCpus"], resources["desiredvCpus"]) == (vcpus, vcpus)
    assert (resources["subnets"], resources["instanceRole"]) == (["subnet-1"], "ecsInstanceRole")
    node = _node(head, "mine-1")
    assert node is not None and node["computeEnvironment"] == "mine", node
    job = _run(head, "q")
    assert job["status"] == "SUCCEEDED", head.story(job["jobId"])
    assert job["hpcbatch"]["node"] == "mine-1"

    head.stop()
    head.start()
    wait_for(lambda: _valid(head, "mine"), 30, "CE mine to be VALID after a restart")
    job = _run(head, "q")
    assert (job["status"], job["hpcbatch"]["node"]) == ("SUCCEEDED", "mine-1")


def test_refusals_name_the_machine_and_what_to_use_instead(
    head: HeadProcess, tmp_path: Path
) -> None:
    b = head.batch()
    too_big = _refusal(
        b.create_compute_environment,
        computeEnvironmentName="big",
        type="MANAGED",
        computeResources={"type": "LOCAL", "maxvCpus": 64 + CPUS},
    )
    assert f"{64 + CPUS} is more than this machine's {CPUS} CPUs" in too_big
    cloud = _refusal(
        b.create_compute_environment,
        computeEnvironmentName="ec2",
        type="MANAGED",
        computeResources={"type": "EC2", "maxvCpus": 4, "subnets": ["s"]},
    )
    assert "EC2 compute environments run on AWS" in cloud and "LOCAL" in cloud
    assert (
        b.describe_compute_environments(computeEnvironments=["big", "ec2"])["computeEnvironments"]
        == []
    )
    # the aws CLI, unchanged, makes one that fits
    made = head.aws(
        tmp_path,
        "create-compute-environment",
        "--compute-environment-name",
        "cli",
        "--type",
        "MANAGED",
        "--compute-resources",
        json.dumps({"type": "LOCAL", "maxvCpus": 1}),
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["computeEnvironmentName"] == "cli"
    wait_for(lambda: _valid(head, "cli"), 30, "CE cli to be VALID")
    refused = head.aws(
        tmp_path,
        "update-compute-environment",
        "--compute-environment",
        "cli",
        "--compute-resources",
        json.dumps({"maxvCpus": 64 + CPUS}),
    )
    assert refused.returncode != 0 and "is more than this machine's" in refused.stderr


def test_max_vcpus_0_releases_the_node_and_delete_stops_its_agent(head: HeadProcess) -> None:
    b = head.batch()
    b.create_compute_environment(
        computeEnvironmentName="shrink",
        type="MANAGED",
        computeResources={"type": "LOCAL", "maxvCpus": 1},
    )
    wait_for(lambda: _valid(head, "shrink"), 30, "CE shrink to be VALID")
    # DISABLED: nothing is placed there, though its node is free; ENABLED again: it runs
    order = [{"order": 1, "computeEnvironment": "shrink"}]
    b.create_job_queue(jobQueueName="sq", priority=1, computeEnvironmentOrder=order)
    b.update_compute_environment(computeEnvironment="shrink", state="DISABLED")
    job_id = b.submit_job(jobName="w", jobQueue="sq", jobDefinition="default")["jobId"]
    waiting = head.wait_status(job_id, "RUNNABLE")
    assert waiting["statusReason"] == "no ENABLED compute environment in queue sq (shrink)"
    b.update_compute_environment(computeEnvironment="shrink", state="ENABLED")
    assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    b.update_job_queue(jobQueue="sq", state="DISABLED")
    b.delete_job_queue(jobQueue="sq")
    agent_dir = head.data_dir / "agents" / "shrink-1"
    assert (agent_dir / "agent.sock").exists()
    b.update_compute_environment(computeEnvironment="shrink", computeResources={"maxvCpus": 0})
    ce = wait_for(lambda: _valid(head, "shrink"), 30, "CE shrink to let its node go")
    assert (ce["statusReason"], ce["computeResources"]["desiredvCpus"]) == (
        "no node: maxvCpus is 0",
        0,
    )
    assert _node(head, "shrink-1") is None and not agent_dir.exists()
    b.update_compute_environment(computeEnvironment="shrink", computeResources={"maxvCpus": 1})
    wait_for(lambda: _valid(head, "shrink"), 30, "CE shrink to get its node back")
    b.update_compute_environment(computeEnvironment="shrink", state="DISABLED")
    b.delete_compute_environment(computeEnvironment="shrink")
    wait_for(lambda: not agent_dir.exists(), 30, "the deleted CE's agent to stop")
    assert _node(head, "shrink-1") is None


def test_delete_while_a_job_runs_is_deleting_until_it_ends(
    head: HeadProcess, tmp_path: Path
) -> None:
    b = head.batch()
    b.create_compute_environment(
        computeEnvironmentName="going",
        type="MANAGED",
        computeResources={"type": "LOCAL", "maxvCpus": 1},
    )
    order = [{"order": 1, "computeEnvironment": "going"}]
    b.create_job_queue(jobQueueName="gq", priority=1, computeEnvironmentOrder=order)
    gate = tmp_path / "gate"
    job_id = b.submit_job(
        jobName="held",
        jobQueue="gq",
        jobDefinition="default",
        containerOverrides={"command": ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]},
    )["jobId"]
    head.wait_status(job_id, "RUNNING")
    b.update_job_queue(
        jobQueue="gq", computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "local"}]
    )
    b.update_compute_environment(computeEnvironment="going", state="DISABLED")
    b.delete_compute_environment(computeEnvironment="going")
    ce = _ce(head, "going")
    assert (ce["status"], ce["statusReason"]) == (
        "DELETING",
        "waiting for 1 running job(s) on its nodes to end",
    )
    node = _node(head, "going-1")
    assert node is not None and node["state"] == "DRAINING", node
    gate.touch()
    assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    wait_for(
        lambda: (
            not b.describe_compute_environments(computeEnvironments=["going"])[
                "computeEnvironments"
            ]
        ),
        30,
        "the CE to disappear",
    )
    wait_for(lambda: not (head.data_dir / "agents" / "going-1").exists(), 30, "its agent gone")
