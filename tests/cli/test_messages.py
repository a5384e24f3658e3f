"""What a person reads from the CLI: --wait lines, whole reasons, unknown ids, a missing '--'."""

from __future__ import annotations

import pytest

from hpcbatch.cli.main import main
from tests.cli.stubhead import StubHead, job

SUBMITTED = {"jobArn": "arn:aws:batch:local:0:job/J1", "jobName": "big", "jobId": "J1"}
CAPACITY = "waiting for capacity: 2 jobs ahead in queue default; needs 1 vCPU, 512 MiB"
FULL = (
    "waiting for capacity: every node in [local] is full: 2/2 vCPUs in use; "
    "1 job ahead in queue default; needs 1 vCPU, 512 MiB"
)
NEVER = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 64 vCPUs; the largest node in "
    "compute environments [local] has 2"
)


def test_wait_prints_each_change_of_status_and_of_reason(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    stub.on(
        "POST",
        "/v1/describejobs",
        {"jobs": [job("J1", "RUNNABLE", statusReason=CAPACITY)]},
        {"jobs": [job("J1", "RUNNABLE", statusReason=CAPACITY)]},
        {"jobs": [job("J1", "RUNNABLE", statusReason=FULL)]},
        {"jobs": [job("J1", "RUNNING")]},
        {"jobs": [job("J1", "SUCCEEDED", statusReason="Essential container in task exited")]},
    )
    assert main(["submit", "-e", stub.endpoint, "--wait", "--", "true"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "submitted job big to queue default",
        f"job J1: RUNNABLE - {CAPACITY}",
        f"job J1: RUNNABLE - {FULL}",
        "job J1: RUNNING",
        "job J1: SUCCEEDED - Essential container in task exited",
    ]


def test_wait_for_a_job_that_can_never_run_ends_with_the_reason_and_exit_6(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    stub.on(
        "POST",
        "/v1/describejobs",
        {"jobs": [job("J1", "RUNNABLE", jobName="big", statusReason=NEVER)]},
    )
    assert main(["submit", "-e", stub.endpoint, "--wait", "--", "true"]) == 6
    assert capsys.readouterr().err.splitlines()[-1] == f"job J1 (big) can never run: {NEVER}"
    assert len(stub.calls("/v1/describejobs")) == 1


def test_a_failed_job_under_wait_says_its_exit_code(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    failed = job(
        "J1",
        "FAILED",
        jobName="big",
        statusReason="Essential container in task exited",
        container={"exitCode": 3},
    )
    stub.on("POST", "/v1/describejobs", {"jobs": [failed]})
    assert main(["submit", "-e", stub.endpoint, "-w", "--", "false"]) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == "job J1 (big) FAILED (exit 3): Essential container in task exited"


LONG = "x" * 30 + " waiting for capacity: every node in [local] is full: 2/2 vCPUs in use"


class FakeTTY:
    def __init__(self, real: object) -> None:
        self.real = real

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_jobs_shows_the_whole_reason_unless_on_a_terminal(
    stub: StubHead, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub.on("POST", "/v1/listjobs", {"jobSummaryList": [job("a", "RUNNABLE", statusReason=LONG)]})
    assert main(["jobs", "-e", stub.endpoint]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(LONG)
    import sys

    monkeypatch.setattr(sys, "stdout", FakeTTY(sys.stdout))
    assert main(["jobs", "-e", stub.endpoint]) == 0
    cut = capsys.readouterr().out.splitlines()[1]
    assert LONG not in cut and cut.endswith("…")
    assert main(["jobs", "-e", stub.endpoint, "--wide"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(LONG)


def test_array_children_are_listed_by_index(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    children = [
        job(f"P:{i}", "SUCCEEDED", createdAt=5, arrayProperties={"index": i}) for i in (10, 2, 0, 1)
    ]
    stub.on("POST", "/v1/listjobs", {"jobSummaryList": children})
    assert main(["jobs", "-e", stub.endpoint, "--array", "P", "-s", "SUCCEEDED"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["P:0", "P:1", "P:2", "P:10"]


@pytest.mark.parametrize("verb", ["cancel", "terminate"])
def test_cancel_or_terminate_of_an_unknown_id_says_so_and_exits_0(
    verb: str, stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/describejobs", {"jobs": [job("a", "RUNNABLE")]})
    stub.on("POST", f"/v1/{verb}jobs", {"successful": ["a"], "errors": []})
    assert main([verb, "a", "nope", "-e", stub.endpoint]) == 0
    out, err = capsys.readouterr()
    assert out == f"{verb}led a\n".replace("terminateled", "terminated").replace(
        "cancelled", "cancelled"
    )
    assert err == f"no such job: nope (nothing to {verb})\n"
    assert [c.body["jobs"] for c in stub.calls(f"/v1/{verb}jobs")] == [["a"]]


def test_submit_without_double_dash_points_at_it(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["submit", "-e", stub.endpoint, "echo", "hi"]) == 2
    assert capsys.readouterr().err == (
        "error: the job's command goes after '--': hpcbatch submit [options] -- echo hi\n"
    )
    assert stub.calls() == []


def test_wait_for_an_array_whose_children_can_never_run_exits_6(
    stub: StubHead, capsys: pytest.CaptureFixture[str]
) -> None:
    stub.on("POST", "/v1/submitjob", SUBMITTED)
    queued = {"size": 3, "statusSummary": {"RUNNABLE": 3}}
    parent = job("J1", "PENDING", jobName="big", arrayProperties=queued)
    child = job("J1:0", "RUNNABLE", statusReason=NEVER, arrayProperties={"index": 0})
    stub.on(
        "POST",
        "/v1/describejobs",
        lambda r: (200, {"jobs": [child] if r.body["jobs"] == ["J1:0"] else [parent]}),
    )
    assert main(["submit", "-e", stub.endpoint, "--array-size", "3", "--wait", "--", "x"]) == 6
    assert capsys.readouterr().err.splitlines()[-1] == f"job J1 (big) can never run: {NEVER}"
