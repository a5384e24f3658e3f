"""``hpcbatch jobs``: ListJobs requests, pagination, merged states and the table."""

from __future__ import annotations

import json

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead, job

T0 = 1_795_460_341_000  # 2026-11-23 18:59:01 UTC


def test_default_lists_running_jobs_of_the_default_queue(stub: StubHead) -> None:
    stub.on("POST", "/v1/listjobs", {"jobSummaryList": []})
    assert main(["jobs", "-e", stub.endpoint]) == 0
    assert [c.body for c in stub.calls()] == [{"jobQueue": "default"}]


def test_follows_next_token_to_the_last_page(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on(
        "POST",
        "/v1/listjobs",
        {"jobSummaryList": [job("a", "RUNNING", createdAt=T0)], "nextToken": "t1"},
        {"jobSummaryList": [job("b", "RUNNING", createdAt=T0 + 1)], "nextToken": None},
    )
    assert main(["jobs", "-e", stub.endpoint, "-q", "gpu", "-o", "json"]) == 0
    assert [c.body for c in stub.calls()] == [
        {"jobQueue": "gpu"},
        {"jobQueue": "gpu", "nextToken": "t1"},
    ]
    document = json.loads(capsys.readouterr().out)
    assert [j["jobId"] for j in document["jobSummaryList"]] == ["a", "b"]


def test_all_asks_every_status_and_merges_by_creation(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    def by_status(recorded):  # type: ignore[no-untyped-def]
        status = recorded.body["jobStatus"]
        jobs = {
            "SUCCEEDED": [job("old", "SUCCEEDED", createdAt=T0)],
            "RUNNING": [job("new", "RUNNING", createdAt=T0 + 5000)],
        }
        return 200, {"jobSummaryList": jobs.get(status, [])}

    stub.on("POST", "/v1/listjobs", by_status)
    assert main(["jobs", "-e", stub.endpoint, "--all", "-o", "json"]) == 0
    statuses = [c.body["jobStatus"] for c in stub.calls()]
    assert statuses == [
        "SUBMITTED",
        "PENDING",
        "RUNNABLE",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
    ]
    ids = [j["jobId"] for j in json.loads(capsys.readouterr().out)["jobSummaryList"]]
    assert ids == ["old", "new"]


def test_name_filter_sends_job_name_and_filters_states_here(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/listjobs", {"jobSummaryList": [job("a", "FAILED"), job("b", "RUNNING")]})
    assert (
        main(["jobs", "-e", stub.endpoint, "--name", "train*", "--state", "failed", "-o", "json"])
        == 0
    )
    assert stub.calls()[0].body == {
        "jobQueue": "default",
        "filters": [{"name": "JOB_NAME", "values": ["train*"]}],
    }
    assert [j["jobId"] for j in json.loads(capsys.readouterr().out)["jobSummaryList"]] == ["a"]


def test_array_children(stub: StubHead) -> None:
    stub.on("POST", "/v1/listjobs", {"jobSummaryList": []})
    assert main(["jobs", "-e", stub.endpoint, "--array", "P", "-s", "RUNNABLE"]) == 0
    assert stub.calls()[0].body == {"arrayJobId": "P", "jobStatus": "RUNNABLE"}


def test_table_shows_local_times_durations_and_short_reasons(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = "Essential container in task exited " + "x" * 80
    stub.on(
        "POST",
        "/v1/listjobs",
        {
            "jobSummaryList": [
                job(
                    "11111111-aaaa",
                    "FAILED",
                    jobName="train",
                    createdAt=T0,
                    startedAt=T0 + 2000,
                    stoppedAt=T0 + 125_000,
                    statusReason=reason,
                    hpcbatch={"owner": "alice"},
                ),
                job("22", "RUNNABLE", jobName="x", createdAt=T0 + 1000),
            ]
        },
    )
    assert main(["jobs", "-e", stub.endpoint, "-s", "FAILED"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "JOB",
        "ID",
        "NAME",
        "OWNER",
        "STATE",
        "CREATED",
        "STARTED",
        "STOPPED",
        "RAN",
        "REASON",
    ]
    assert lines[1].startswith(
        "11111111-aaaa  train  alice  FAILED    2026-11-23 18:59:01  2026-11-23 18:59:03  "
        "2026-11-23 19:01:06  2m03s  Essential container"
    )
    assert lines[1].endswith("exited " + "x" * 80)  # not a terminal: the whole reason
    assert lines[2].split()[:4] == ["22", "x", "-", "RUNNABLE"]  # a job from before owners
    # columns line up: every row's STATE starts where the header's does
    column = lines[0].index("STATE")
    assert lines[1][column:].startswith("FAILED") and lines[2][column:].startswith("RUNNABLE")
