"""Queues, compute environments, job definitions, nodes, cancel and terminate."""

from __future__ import annotations

import getpass
import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead, job


def test_queue_create_orders_compute_environments(stub: StubHead) -> None:
    stub.on("POST", "/v1/createjobqueue", {"jobQueueName": "gpu", "jobQueueArn": "arn:q"})
    argv = [
        "queues",
        "create",
        "gpu",
        "--priority",
        "10",
        "--ce",
        "a",
        "--ce",
        "b:5",
        "--state",
        "disabled",
    ]
    assert main([*argv, "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body == {
        "jobQueueName": "gpu",
        "priority": 10,
        "computeEnvironmentOrder": [
            {"order": 1, "computeEnvironment": "a"},
            {"order": 5, "computeEnvironment": "b"},
        ],
        "state": "DISABLED",
    }


def test_queue_delete_force_disables_first(stub: StubHead) -> None:
    stub.on("POST", "/v1/updatejobqueue", {"jobQueueName": "q", "jobQueueArn": "arn:q"})
    stub.on("POST", "/v1/deletejobqueue", {})
    assert main(["queues", "delete", "q", "--force", "-e", stub.endpoint]) == 0
    assert [(c.route, c.body) for c in stub.calls()] == [
        ("/v1/updatejobqueue", {"jobQueue": "q", "state": "DISABLED"}),
        ("/v1/deletejobqueue", {"jobQueue": "q"}),
    ]


def test_queue_list_is_the_default_action_and_pages(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = {
        "jobQueueName": "default",
        "state": "ENABLED",
        "status": "VALID",
        "priority": 1,
        "computeEnvironmentOrder": [
            {"order": 2, "computeEnvironment": "arn:x:compute-environment/b"},
            {"order": 1, "computeEnvironment": "arn:x:compute-environment/local"},
        ],
    }
    stub.on(
        "POST",
        "/v1/describejobqueues",
        {"jobQueues": [queue], "nextToken": "n"},
        {"jobQueues": [{**queue, "jobQueueName": "other"}]},
    )
    assert main(["queues", "-e", stub.endpoint]) == 0
    assert [c.body for c in stub.calls()] == [{}, {"nextToken": "n"}]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "STATE",
        "STATUS",
        "PRIORITY",
        "COMPUTE",
        "ENVIRONMENTS",
        "REASON",
    ]
    assert lines[1].split() == ["default", "ENABLED", "VALID", "1", "local:1,b:2", "-"]
    assert lines[2].startswith("other")


def test_compute_environment_create_carries_the_kind(stub: StubHead) -> None:
    stub.on(
        "POST",
        "/v1/createcomputeenvironment",
        {"computeEnvironmentName": "c", "computeEnvironmentArn": "a"},
    )
    assert (
        main(["ces", "create", "c", "--kind", "local", "--max-vcpus", "64", "-e", stub.endpoint])
        == 0
    )
    assert stub.calls()[0].body == {
        "computeEnvironmentName": "c",
        "type": "MANAGED",
        "computeResources": {"type": "LOCAL", "maxvCpus": 64},
    }


def test_a_slurm_compute_environment_names_its_partitions_account_and_qos(
    stub: StubHead,
) -> None:
    stub.on(
        "POST",
        "/v1/createcomputeenvironment",
        {"computeEnvironmentName": "hpc", "computeEnvironmentArn": "a"},
    )
    argv = ["ces", "create", "hpc", "--kind", "slurm", "--partition", "batch", "--partition"]
    argv += ["debug", "--account", "physics", "--qos", "normal", "--max-vcpus", "64"]
    assert main([*argv, "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body["computeResources"] == {
        "type": "SLURM",
        "maxvCpus": 64,
        "instanceTypes": ["batch", "debug"],
        "tags": {"slurm:account": "physics", "slurm:qos": "normal"},
    }


def test_compute_environment_delete_force(stub: StubHead) -> None:
    stub.on("POST", "/v1/updatecomputeenvironment", {})
    stub.on("POST", "/v1/deletecomputeenvironment", {})
    assert main(["compute-environments", "delete", "c", "--force", "-e", stub.endpoint]) == 0
    assert [c.route for c in stub.calls()] == [
        "/v1/updatecomputeenvironment",
        "/v1/deletecomputeenvironment",
    ]
    assert stub.calls()[0].body == {"computeEnvironment": "c", "state": "DISABLED"}


def test_job_definition_register(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on(
        "POST",
        "/v1/registerjobdefinition",
        {"jobDefinitionName": "sim", "jobDefinitionArn": "arn:d/sim:2", "revision": 2},
    )
    argv = [
        "defs",
        "register",
        "sim",
        "--vcpus",
        "4",
        "--memory",
        "1024",
        "--retry",
        "2",
        "--timeout",
        "3600",
        "--env",
        "OMP=4",
        "-e",
        stub.endpoint,
        "--",
        "./sim",
        "--steps",
        "10",
    ]
    assert main(argv) == 0
    assert stub.calls()[0].body == {
        "jobDefinitionName": "sim",
        "type": "container",
        "containerProperties": {
            "command": ["./sim", "--steps", "10"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "4"},
                {"type": "MEMORY", "value": "1024"},
            ],
            "environment": [{"name": "OMP", "value": "4"}],
        },
        "retryStrategy": {"attempts": 2},
        "timeout": {"attemptDurationSeconds": 3600},
    }
    assert capsys.readouterr().out == "registered sim:2\n"


def test_job_definition_list_active_by_default(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = {
        "jobDefinitionName": "default",
        "revision": 1,
        "status": "ACTIVE",
        "type": "container",
        "containerProperties": {"command": ["true"], "vcpus": 1, "memory": 512},
    }
    stub.on("POST", "/v1/describejobdefinitions", {"jobDefinitions": [definition]})
    assert main(["job-definitions", "list", "-e", stub.endpoint]) == 0
    assert stub.calls()[0].body == {"status": "ACTIVE"}
    assert capsys.readouterr().out.splitlines()[1].split() == [
        "default",
        "1",
        "ACTIVE",
        "container",
        "1",
        "512",
        "-",
        "true",
    ]


def test_nodes_table(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    node = {
        "name": "n1",
        "computeEnvironment": "local",
        "state": "DRAINING",
        "stateReason": "disk swap",
        "stateChangedAt": 0,
        "vcpus": 16,
        "memoryMiB": 64000,
        "gpus": 2,
        "allocatedVcpus": 2.5,
        "allocatedMemoryMiB": 1024,
        "allocatedGpus": 1,
        "runningJobs": 3,
        "lastHeartbeatAt": None,
        "enforcement": "cgroups v2",
        "agentVersion": "0.1.0-0123456789ab",
    }
    stub.on("GET", "/hpcbatch/v1/nodes", {"nodes": [node]})
    assert main(["nodes", "-e", stub.endpoint]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.split() == [
        "n1",
        "local",
        "DRAINING",
        "2.5/16",
        "1024/64000",
        "1/2",
        "3",
        "never",
        "cgroups",
        "v2",
        "0.1.0-0123456789ab",
        "disk",
        "swap",
    ]


def test_nodes_drain_and_resume(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on("POST", "/hpcbatch/v1/nodes/n1/drain", {"node": {"name": "n1", "state": "DRAINING"}})
    stub.on("POST", "/hpcbatch/v1/nodes/n1/resume", {"node": {"name": "n1", "state": "ONLINE"}})
    assert main(["nodes", "drain", "n1", "--reason", "disk swap", "-e", stub.endpoint]) == 0
    assert main(["nodes", "resume", "n1", "-e", stub.endpoint, "-o", "json"]) == 0
    assert [c.body for c in stub.calls()] == [{"reason": "disk swap"}, {"reason": ""}]
    out = capsys.readouterr().out
    assert out.startswith("n1: DRAINING\n")
    assert json.loads(out.split("\n", 1)[1]) == {"node": {"name": "n1", "state": "ONLINE"}}


def test_cancel_and_terminate_send_who_did_it(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/canceljobs", {"successful": ["a", "b"], "errors": []})
    stub.on("POST", "/v1/terminatejobs", {"successful": ["c"], "errors": []})
    known = {"jobs": [job(i, "RUNNING") for i in "abc"]}
    stub.on("POST", "/v1/describejobs", known)
    assert main(["cancel", "a", "b", "-e", stub.endpoint]) == 0
    assert main(["terminate", "c", "--reason", "wrong input", "-e", stub.endpoint]) == 0
    bodies = [(c.route, c.body) for c in stub.calls() if c.route != "/v1/describejobs"]
    reason = f"Cancelled by {getpass.getuser()} with hpcbatch CLI"
    assert bodies == [
        ("/v1/canceljobs", {"jobs": ["a", "b"], "reason": reason}),
        ("/v1/terminatejobs", {"jobs": ["c"], "reason": "wrong input"}),
    ]
    assert capsys.readouterr().out == "cancelled a\ncancelled b\nterminated c\n"


def test_cancel_sends_50_ids_a_request_and_names_each_refused_job(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f"j{i}" for i in range(120)]
    stub.on("POST", "/v1/describejobs", {"jobs": [job(i, "RUNNABLE") for i in ids]})
    refused = {"job": "j7", "code": "AccessDenied", "message": "j7 is bob's job"}
    stub.on(
        "POST", "/v1/canceljobs", {"successful": [i for i in ids if i != "j7"], "errors": [refused]}
    )
    assert main(["cancel", *ids, "-e", stub.endpoint]) == 3
    assert [len(c.body["jobs"]) for c in stub.calls("/v1/canceljobs")] == [50, 50, 20]
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"cancelled {i}" for i in ids if i != "j7"]
    assert err == "cannot cancel j7: AccessDenied: j7 is bob's job\n"
