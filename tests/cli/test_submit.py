"""``hpcbatch submit``: the SubmitJob request it sends, what it prints, and --wait."""

from __future__ import annotations

import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead, job

SUBMITTED = {"jobArn": "arn:aws:batch:local:0:job/J1", "jobName": "echo", "jobId": "J1"}


def test_command_shortcut_sends_overrides_on_the_default_definition(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    code = main(["submit", "--endpoint", stub.endpoint, "--", "/bin/echo", "hello", "-n"])
    assert code == 0
    [request] = stub.calls()
    assert (request.method, request.path) == ("POST", "/v1/submitjob")
    assert request.headers["content-type"] == "application/json"
    assert "x-hpcbatch-strict" not in request.headers
    assert request.body == {
        "jobName": "echo",
        "jobQueue": "default",
        "jobDefinition": "default",
        "containerOverrides": {"command": ["/bin/echo", "hello", "-n"]},
    }
    out, err = capsys.readouterr()
    assert out == "J1\n"  # stdout is the id alone: id=$(hpcbatch submit ...)
    assert "echo" in err


def test_every_flag_maps_to_its_aws_field(stub: StubHead) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    argv = [
        "submit",
        "-e",
        stub.endpoint,
        "--queue",
        "gpu",
        "--definition",
        "train:3",
        "--name",
        "run-1",
        "--array-size",
        "10",
        "--depends-on",
        "A1",
        "--depends-on",
        "A2:N_TO_N",
        "--depends-on",
        "P:3",
        "--depends-on",
        "SEQUENTIAL",
        "--env",
        "K=V=W",
        "--vcpus",
        "0.5",
        "--memory",
        "2048",
        "--gpus",
        "2",
        "--retry",
        "3",
        "--timeout",
        "600",
        "--priority",
        "7",
        "--share",
        "chem",
        "--parameter",
        "in=x.dat",
        "--tag",
        "team=hpc",
        "--strict",
        "--",
        "train.py",
    ]
    assert main(argv) == 0
    [request] = stub.calls()
    assert request.headers["x-hpcbatch-strict"] == "1"
    assert request.body == {
        "jobName": "run-1",
        "jobQueue": "gpu",
        "jobDefinition": "train:3",
        "arrayProperties": {"size": 10},
        "dependsOn": [
            {"jobId": "A1"},
            {"jobId": "A2", "type": "N_TO_N"},
            {"jobId": "P:3"},  # an array child's id, not a type
            {"type": "SEQUENTIAL"},
        ],
        "containerOverrides": {
            "command": ["train.py"],
            "environment": [{"name": "K", "value": "V=W"}],
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.5"},
                {"type": "MEMORY", "value": "2048"},
                {"type": "GPU", "value": "2"},
            ],
        },
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": 600},
        "schedulingPriorityOverride": 7,
        "shareIdentifier": "chem",
        "parameters": {"in": "x.dat"},
        "tags": {"team": "hpc"},
    }


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["--", "./my script.sh"], "my-script-sh"),
        (["--", "_hidden"], "hidden"),
        (["--", "..."], "job"),
        (["--definition", "arn:aws:batch:r:1:job-definition/nightly:4"], "nightly"),
        ([], "default"),
    ],
)
def test_default_job_name_is_a_valid_aws_name(stub: StubHead, argv: list[str], name: str) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    assert main(["submit", "-e", stub.endpoint, *argv]) == 0
    assert stub.calls()[0].body["jobName"] == name


def test_json_output_is_the_raw_response(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    assert main(["submit", "-e", stub.endpoint, "-o", "json", "--", "true"]) == 0
    assert json.loads(capsys.readouterr().out) == SUBMITTED


def test_wait_polls_until_succeeded(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    stub.on(
        "POST",
        "/v1/describejobs",
        {"jobs": [job("J1", "RUNNABLE")]},
        {"jobs": [job("J1", "RUNNING")]},
        {"jobs": [job("J1", "SUCCEEDED")]},
    )
    assert main(["submit", "-e", stub.endpoint, "--wait", "--", "true"]) == 0
    polls = stub.calls("/v1/describejobs")
    assert len(polls) == 3 and all(p.body == {"jobs": ["J1"]} for p in polls)
    err = capsys.readouterr().err
    assert "job J1: RUNNING" in err and "job J1: SUCCEEDED" in err


def test_wait_on_failed_job_exits_1_with_the_reason(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    failed = job("J1", "FAILED", statusReason="Essential container in task exited")
    stub.on("POST", "/v1/describejobs", {"jobs": [failed]})
    assert main(["submit", "-e", stub.endpoint, "-w", "--", "false"]) == 1
    assert "FAILED: Essential container in task exited" in capsys.readouterr().err


def test_wait_on_array_reports_progress_lines_when_not_a_tty(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    running = {"size": 4, "statusSummary": {"RUNNING": 2, "SUCCEEDED": 2}}
    ended = {"size": 4, "statusSummary": {"SUCCEEDED": 4}}
    stub.on(
        "POST",
        "/v1/describejobs",
        {"jobs": [job("J1", "PENDING", arrayProperties=running)]},
        {"jobs": [job("J1", "SUCCEEDED", arrayProperties=ended)]},
    )
    assert main(["submit", "-e", stub.endpoint, "--array-size", "4", "--wait"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert any("2/4 ended" in line and "RUNNING 2" in line for line in lines)
    assert any("4/4 ended" in line for line in lines)
    assert not any("\r" in line for line in lines)  # no bar redraws into a log file


def test_wait_for_unknown_job_is_a_client_error(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    stub.on("POST", "/v1/describejobs", {"jobs": []})
    assert main(["submit", "-e", stub.endpoint, "--wait"]) == 3
    assert "no such job: J1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--env", "NOEQUALS"],
        ["--memory", "0"],
        ["--vcpus", "-1"],
        ["--array-size", "x"],
    ],
)
def test_bad_flags_are_usage_errors_sent_nowhere(stub: StubHead, argv: list[str]) -> None:
    assert main(["submit", "-e", stub.endpoint, *argv]) == 2
    assert stub.calls() == []


def test_consumable_flags_become_the_override(stub: StubHead) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    argv = ["submit", "-e", stub.endpoint, "--consumable", "matlab=2", "--consumable", "db=1"]
    assert main([*argv, "--", "true"]) == 0
    [request] = stub.calls()
    assert request.body["consumableResourcePropertiesOverride"] == {
        "consumableResourceList": [
            {"consumableResource": "matlab", "quantity": 2},
            {"consumableResource": "db", "quantity": 1},
        ]
    }


def test_a_consumable_flag_without_a_positive_count_is_refused(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", "-e", stub.endpoint, "--consumable", "matlab=0", "--", "true"]) == 2
    assert stub.calls() == []
    assert "expected a number >= 1, got 0" in capsys.readouterr().err
