"""CancelJobs and TerminateJobs through boto3 and the aws CLI against a real head: each job
acted on as CancelJob or TerminateJob would, with AWS's per-job answer, and a request refused as a
whole changing nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess

UUID = "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11"  # no job of this head


def _error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert raised.value.response["Error"]["Code"] == "ClientException"
    return str(raised.value.response["Error"]["Message"])


def _plain_user_key(head: HeadProcess) -> tuple[str, str]:
    """A key acting as the Unix user nobody: no admin, owner of nothing yet."""
    response = httpx.post(
        f"{head.endpoint}/hpcbatch/v1/users",
        json={"name": "plain", "unixUser": "nobody"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["accessKeyId"], response.json()["secretAccessKey"]


def _submit(batch: Any, name: str, *after: str) -> str:
    return str(
        batch.submit_job(
            jobName=name,
            jobQueue="default",
            jobDefinition="default",
            containerOverrides={"command": ["sleep", "60"]},
            dependsOn=[{"jobId": job_id} for job_id in after],
        )["jobId"]
    )


def test_cancel_jobs_and_terminate_jobs_answer_per_job(head: HeadProcess) -> None:
    root = head.batch()
    plain = head.batch(key=_plain_user_key(head))
    running = _submit(root, "runs")
    head.wait_status(running, "RUNNING")
    roots = _submit(root, "roots", running)  # PENDING: waits on the running job
    mine = _submit(plain, "mine", running)

    answer = plain.cancel_jobs(jobs=[roots, mine, UUID, "bad id", mine], reason="bulk")
    assert answer["successful"] == [mine, UUID]  # an unknown id counts as done, as AWS says
    errors = {e["job"]: e for e in answer["errors"]}
    assert set(errors) == {roots, "bad id"}
    assert errors[roots]["code"] == "AccessDenied"
    assert "CancelJobs: job" in errors[roots]["message"]
    assert "only its owner or an admin may cancel it" in errors[roots]["message"]
    assert errors["bad id"]["code"] == "ValidationException"
    assert errors["bad id"]["message"].startswith("jobs[3]: must be a job ID")
    assert head.describe(mine)["status"] == "FAILED"
    assert head.describe(mine)["statusReason"] == "bulk"
    assert head.describe(roots)["status"] == "PENDING"

    # A request refused as a whole changes nothing.
    assert "jobs: must have 1-50 entries (got 51)" in _error(
        root.terminate_jobs, jobs=[roots] * 51, reason="no"
    )
    assert "reason: must be 1-1,024 characters" in _error(
        root.terminate_jobs, jobs=[roots], reason="x" * 1025
    )
    assert head.describe(roots)["status"] == "PENDING"

    # CancelJobs leaves a running job alone, as CancelJob does; TerminateJobs kills it.
    assert root.cancel_jobs(jobs=[running], reason="no")["successful"] == [running]
    assert head.describe(running)["status"] == "RUNNING"
    answer = root.terminate_jobs(jobs=[running, roots], reason="stop")
    assert (answer["successful"], answer["errors"]) == ([running, roots], [])
    for job_id in (running, roots):
        job = head.wait_status(job_id, "FAILED")
        assert job["statusReason"] == "stop"


def test_the_aws_cli_cancels_and_terminates_in_bulk(head: HeadProcess, tmp_path: Path) -> None:
    b = head.batch()
    running = _submit(b, "runs")
    job_id = _submit(b, "held", running)  # PENDING while the first one runs
    out = head.aws(tmp_path, "cancel-jobs", "--jobs", job_id, "--reason", "cli")
    if "Invalid choice: 'cancel-jobs'" in out.stderr:
        # aws CLI v1 bundles its own botocore (1.46.3 carries 1.43.62), whose model predates
        # the bulk operations: nothing the head can answer; a newer CLI runs the rest.
        pytest.skip(f"this aws CLI does not know cancel-jobs: {out.stderr.splitlines()[-1]}")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"successful": [job_id], "errors": []}
    assert head.describe(job_id)["statusReason"] == "cli"
    out = head.aws(tmp_path, "terminate-jobs", "--jobs", running, job_id, "--reason", "end")
    assert json.loads(out.stdout) == {"successful": [running, job_id], "errors": []}
    assert head.wait_status(running, "FAILED")["statusReason"] == "end"
