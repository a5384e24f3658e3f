"""``hpcbatch submit --nodes N``: a multi-node parallel job through nodeOverrides."""

from __future__ import annotations

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead

SUBMITTED = {"jobArn": "arn:aws:batch:local:0:job/J1", "jobName": "mpirun", "jobId": "J1"}


SHARED = {
    "environment": [{"name": "K", "value": "V"}],
    "resourceRequirements": [{"type": "VCPU", "value": "2"}],
}


def test_nodes_runs_the_command_on_the_main_node_and_the_others_hold(stub: StubHead) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    argv = ["submit", "-e", stub.endpoint, "--nodes", "4", "--vcpus", "2", "--env", "K=V"]
    assert main([*argv, "--", "mpirun", "python", "app.py"]) == 0
    [request] = stub.calls()
    assert request.body == {
        "jobName": "mpirun",
        "jobQueue": "default",
        "jobDefinition": "default-multinode",
        "nodeOverrides": {
            "numNodes": 4,
            "nodePropertyOverrides": [
                {
                    "targetNodes": "0",
                    "containerOverrides": {"command": ["mpirun", "python", "app.py"], **SHARED},
                },
                {
                    "targetNodes": "1:",
                    "containerOverrides": {"command": ["sleep", "infinity"], **SHARED},
                },
            ],
        },
    }


def test_every_node_runs_the_command_the_aws_way(stub: StubHead) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    argv = ["submit", "-e", stub.endpoint, "--nodes", "3", "--every-node", "--env", "K=V"]
    assert main([*argv, "--", "./node.sh"]) == 0
    [request] = stub.calls()
    assert request.body["nodeOverrides"]["nodePropertyOverrides"] == [
        {
            "targetNodes": "0:",
            "containerOverrides": {
                "command": ["./node.sh"],
                "environment": [{"name": "K", "value": "V"}],
            },
        }
    ]


def test_a_definition_whose_main_node_is_in_the_middle_gets_holds_on_both_sides(
    stub: StubHead,
) -> None:
    stub.on("POST", "/v1/describejobdefinitions", _definition(1))
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    argv = ["submit", "-e", stub.endpoint, "--nodes", "3", "--definition", "mpi"]
    assert main([*argv, "--", "mpirun", "a"]) == 0
    [request] = stub.calls("/v1/submitjob")
    ranges = request.body["nodeOverrides"]["nodePropertyOverrides"]
    assert [(r["targetNodes"], r["containerOverrides"]["command"]) for r in ranges] == [
        ("0:0", ["sleep", "infinity"]),
        ("1", ["mpirun", "a"]),
        ("2:", ["sleep", "infinity"]),
    ]


def test_nodes_without_a_command_only_sets_the_count_on_the_named_definition(
    stub: StubHead,
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    assert main(["submit", "-e", stub.endpoint, "--nodes", "2", "--definition", "mpi:3"]) == 0
    [request] = stub.calls()
    assert request.body["jobDefinition"] == "mpi:3"
    assert request.body["jobName"] == "mpi"
    assert request.body["nodeOverrides"] == {"numNodes": 2}
    assert "containerOverrides" not in request.body


@pytest.mark.parametrize(
    ("flags", "phrase"),
    [
        (["--nodes", "2", "--array-size", "3"], "array jobs cannot be multinode"),
        (["--nodes", "2", "--main-node", "2"], "--main-node 2 must be less than --nodes 2"),
        (["--main-node", "0"], "--main-node needs --nodes"),
        (["--every-node"], "--every-node needs --nodes"),
    ],
)
def test_bad_node_flags_are_usage_errors_before_any_request(
    stub: StubHead, capsys: pytest.CaptureFixture[str], flags: list[str], phrase: str
) -> None:
    assert main(["submit", "-e", stub.endpoint, *flags, "--", "true"]) == 2
    assert phrase in capsys.readouterr().err
    assert stub.calls() == []


def _definition(main_node: int) -> dict[str, object]:
    return {
        "jobDefinitions": [{"jobDefinitionName": "d", "nodeProperties": {"mainNode": main_node}}]
    }


def test_main_node_must_match_the_definition(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobdefinitions", _definition(0))
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    assert main(["submit", "-e", stub.endpoint, "--nodes", "3", "--main-node", "1", "--", "x"]) == 3
    assert "names main node 0" in capsys.readouterr().err
    assert stub.calls("/v1/submitjob") == []
    assert main(["submit", "-e", stub.endpoint, "--nodes", "3", "--main-node", "0", "--", "x"]) == 0
    assert len(stub.calls("/v1/submitjob")) == 1
