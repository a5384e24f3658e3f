"""``hpcbatch describe`` and ``hpcbatch logs``."""

from __future__ import annotations

import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import Recorded, StubHead, job

T0 = 1_795_460_341_000  # 2026-11-23 18:59:01 UTC

FAILED_JOB = job(
    "J1",
    "FAILED",
    jobName="train",
    statusReason="Essential container in task exited",
    jobQueue="arn:aws:batch:local:0:job-queue/default",
    jobDefinition="arn:aws:batch:local:0:job-definition/default:1",
    createdAt=T0,
    startedAt=T0 + 1000,
    stoppedAt=T0 + 4000,
    container={
        "command": ["python", "train.py", "--lr", "0.1 0.2"],
        "resourceRequirements": [
            {"type": "VCPU", "value": "2"},
            {"type": "MEMORY", "value": "512"},
        ],
    },
    retryStrategy={"attempts": 2},
    dependsOn=[{"jobId": "J0", "type": "N_TO_N"}],
    attempts=[
        {
            "container": {
                "containerInstanceArn": "arn:aws:batch:local:0:node/n1",
                "exitCode": 137,
                "reason": "OutOfMemory",
                "logStreamName": "default/J1/1",
            },
            "startedAt": T0 + 1000,
            "stoppedAt": T0 + 2000,
            "statusReason": "retrying",
        },
        {
            "container": {
                "containerInstanceArn": "arn:aws:batch:local:0:node/n2",
                "exitCode": 1,
                "logStreamName": "default/J1/2",
            },
            "startedAt": T0 + 3000,
            "stoppedAt": T0 + 4000,
        },
    ],
)


def test_describe_shows_what_a_person_asks_first(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobs", {"jobs": [FAILED_JOB]})
    assert main(["describe", "-e", stub.endpoint, "J1"]) == 0
    assert stub.calls()[0].body == {"jobs": ["J1"]}
    out = capsys.readouterr().out
    for expected in [
        "Job J1  train",
        "status:       FAILED",
        "reason:       Essential container in task exited",
        "queue:        default",
        "definition:   default:1",
        "command:      python train.py --lr '0.1 0.2'",
        "workdir:      its attempt's own directory",
        "resources:    2 vCPUs, 512 MiB",
        "depends on:   J0 (N_TO_N)",
        "#1  node n1  exit 137  2026-11-23 18:59:02 -> 2026-11-23 18:59:03 (1.00s)",
        "reason: OutOfMemory",
        "log:    default/J1/2",
        "#2  node n2  exit 1",
    ]:
        assert expected in out, expected


def test_describe_array_parent_and_history(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = job(
        "P", "PENDING", arrayProperties={"size": 3, "statusSummary": {"RUNNING": 1, "RUNNABLE": 2}}
    )
    stub.on("POST", "/v1/describejobs", {"jobs": [parent]})
    stub.on(
        "GET",
        "/hpcbatch/v1/jobs/P/history",
        {
            "jobId": "P",
            "events": [
                {"time": T0, "cause": "api-7", "event": "submitted", "detail": "queue default"},
            ],
        },
    )
    assert main(["describe", "-e", stub.endpoint, "P", "--history"]) == 0
    out = capsys.readouterr().out
    assert "array:        3 children: RUNNING 1, RUNNABLE 2" in out
    assert "2026-11-23 18:59:01  submitted  api-7  queue default" in out


def test_describe_unknown_job_exits_3(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on("POST", "/v1/describejobs", {"jobs": [FAILED_JOB]})
    assert main(["describe", "-e", stub.endpoint, "J1", "nope", "-o", "json"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out)["jobs"][0]["jobId"] == "J1"
    assert "no such job: nope" in err


def test_history_route_encodes_array_child_ids(stub: StubHead) -> None:
    stub.on(
        "POST", "/v1/describejobs", {"jobs": [job("P:2", "RUNNING", arrayProperties={"index": 2})]}
    )
    stub.on("GET", "/hpcbatch/v1/jobs/P%3A2/history", {"jobId": "P:2", "events": []})
    assert main(["describe", "-e", stub.endpoint, "P:2", "--history"]) == 0
    assert stub.calls()[-1].path == "/hpcbatch/v1/jobs/P%3A2/history"


def test_logs_reads_everything_there_is(stub: StubHead, capsys: pytest.CaptureFixture[str]) -> None:
    stub.on(
        "GET",
        "/hpcbatch/v1/jobs/J1/logs",
        {"jobId": "J1", "attempt": 1, "data": "line 1\n", "nextOffset": 7, "complete": False},
        {"jobId": "J1", "attempt": 1, "data": "", "nextOffset": 7, "complete": False},
    )
    assert main(["logs", "-e", stub.endpoint, "J1", "--attempt", "1"]) == 0
    assert capsys.readouterr().out == "line 1\n"
    assert [c.path for c in stub.calls()] == [
        "/hpcbatch/v1/jobs/J1/logs?offset=0&attempt=1",
        "/hpcbatch/v1/jobs/J1/logs?offset=7&attempt=1",
    ]


def test_logs_follow_polls_until_complete(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = iter([("a\n", False), ("", False), ("", False), ("b\n", False), ("c\n", True)])
    offset = [0]

    def answer(recorded: Recorded) -> tuple[int, dict[str, object]]:
        data, complete = next(chunks)
        offset[0] += len(data)
        return 200, {
            "jobId": "J1",
            "attempt": 2,
            "data": data,
            "nextOffset": offset[0],
            "complete": complete,
        }

    stub.on("GET", "/hpcbatch/v1/jobs/J1/logs", answer)
    assert main(["logs", "-e", stub.endpoint, "J1", "-f"]) == 0
    assert capsys.readouterr().out == "a\nb\nc\n"
    assert len(stub.calls()) == 5
    assert "attempt=" not in stub.calls()[0].path  # latest attempt unless asked


def test_logs_json_is_one_line_per_chunk(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    chunk = {"jobId": "J1", "attempt": 1, "data": "x", "nextOffset": 1, "complete": True}
    stub.on("GET", "/hpcbatch/v1/jobs/J1/logs", chunk)
    assert main(["logs", "-e", stub.endpoint, "J1", "-o", "json"]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [chunk]


def test_describe_shows_where_the_job_runs(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    job = {**FAILED_JOB, "hpcbatch": {"workdir": "/home/ana/run 1"}}
    stub.on("POST", "/v1/describejobs", {"jobs": [job]})
    assert main(["describe", "-e", stub.endpoint, "J1"]) == 0
    assert "workdir:      /home/ana/run 1" in capsys.readouterr().out
