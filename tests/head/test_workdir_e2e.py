"""Jobs run where they were submitted (issue 10 item 1), through a real head and its LOCAL
agents: the CLI's current directory, ``--workdir attempt``, a directory missing on the node, and
boto3 setting the ``x-hpcbatch-workdir`` header itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))


def _submit(head: HeadProcess, cwd: Path, *args: str) -> str:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    done = subprocess.run(
        [HPCBATCH, "submit", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _log(head: HeadProcess, job_id: str) -> str:
    return str(head.get(f"/hpcbatch/v1/jobs/{job_id}/logs")["data"])


def test_prepare_sh_runs_in_the_directory_it_was_submitted_from(
    head: HeadProcess, tmp_path: Path
) -> None:
    project = tmp_path / "my project"
    project.mkdir()
    (project / "input.txt").write_text("42\n")
    (project / "prepare.sh").write_text(
        '#!/bin/sh\npwd\ncat input.txt\necho "$HPCBATCH_ATTEMPT_DIR" > attempt-dir.txt\n'
    )
    (project / "prepare.sh").chmod(0o755)
    job_id = _submit(head, project, "--", "./prepare.sh")
    assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert _log(head, job_id) == f"{project}\n42\n"
    attempt_dir = Path((project / "attempt-dir.txt").read_text().strip())
    # the job's private attempt dir (recycled once the attempt is acked: the job left it empty)
    assert (attempt_dir.parent.name, attempt_dir.name) == ("work", f"{job_id}%2F1")
    assert head.raw_describe(job_id)["hpcbatch"]["workdir"] == str(project)

    private = _submit(
        head, project, "--workdir", "attempt", "--", "sh", "-c", 'pwd; echo "$HPCBATCH_ATTEMPT_DIR"'
    )
    assert head.wait_status(private, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    where, named = _log(head, private).splitlines()
    assert where == named and Path(where).parent.name == "work"
    assert "workdir" not in head.raw_describe(private)["hpcbatch"]


def test_a_workdir_missing_on_the_node_fails_the_job_with_the_reason(
    head: HeadProcess, tmp_path: Path
) -> None:
    missing = tmp_path / "not-there"
    job_id = _submit(head, tmp_path, "--workdir", str(missing), "--", "true")
    failed = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    node = head.raw_describe(job_id)["hpcbatch"]["node"]
    reason = f"CannotStartContainerError: working directory {missing} does not exist on {node}"
    assert failed["status"] == "FAILED"
    assert failed["attempts"][-1]["statusReason"] == reason


def _with_workdir(client: Any, header: str) -> Any:
    """boto3 sends hpcbatch's header through botocore's documented event hook."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-hpcbatch-workdir"] = header

    client.meta.events.register("before-sign.batch.SubmitJob", add_header)
    return client


def test_boto3_sets_the_workdir_header_and_bad_ones_are_400s(
    head: HeadProcess, tmp_path: Path
) -> None:
    runs = tmp_path / "runs 1"
    runs.mkdir()
    batch = _with_workdir(head.batch(), quote(str(runs)))
    job = batch.submit_job(
        jobName="where",
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={"command": ["pwd"]},
    )
    assert head.wait_status(job["jobId"], "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert _log(head, job["jobId"]) == f"{runs}\n"

    relative = _with_workdir(head.batch(), "runs")
    with pytest.raises(ClientError) as refused:
        relative.submit_job(jobName="rel", jobQueue="default", jobDefinition="default")
    error = refused.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ClientException",
        "x-hpcbatch-workdir: must be an absolute path (starting with /), not 'runs'",
    )
    body = {"jobName": "bad", "jobQueue": "default", "jobDefinition": "default"}
    for header, rule in [
        ("/a%00b", "must not contain a NUL character"),
        ("/a%FF", "must be percent-encoded UTF-8"),
        ("/" + "a" * 4095, "must be at most 4095 bytes, not 4096"),
    ]:
        answer = httpx.post(
            f"{head.endpoint}/v1/submitjob", json=body, headers={"x-hpcbatch-workdir": header}
        )
        assert answer.status_code == 400
        assert answer.json()["message"] == f"x-hpcbatch-workdir: {rule}"
    listed = batch.list_jobs(jobQueue="default", filters=[{"name": "JOB_NAME", "values": ["*"]}])
    assert [j["jobName"] for j in listed["jobSummaryList"]] == ["where"]  # nothing refused stayed
