"""Jobs through the real head: HTTP (boto3), a real local agent, real processes, real SQLite."""

from __future__ import annotations

import os
from pathlib import Path

from tests.head.headproc import HeadProcess, wait_for


def submit(head: HeadProcess, command: list[str], **fields: object) -> str:
    overrides = dict(fields.pop("containerOverrides", {}))  # type: ignore[call-overload]
    overrides["command"] = command
    response = head.batch().submit_job(
        jobName=str(fields.pop("jobName", "t")),
        jobQueue="default",
        jobDefinition="default",
        containerOverrides=overrides,
        **fields,
    )
    return str(response["jobId"])


def logs(head: HeadProcess, job_id: str, attempt: int | None = None) -> str:
    params = {"attempt": attempt} if attempt else {}
    return str(head.get(f"/hpcbatch/v1/jobs/{job_id}/logs", **params)["data"])


def test_hello_world_job_runs_with_its_environment_and_logs(head: HeadProcess) -> None:
    job_id = submit(
        head,
        [
            "sh",
            "-c",
            'echo "hello from $AWS_BATCH_JOB_ID in $AWS_BATCH_JQ_NAME '
            'on $AWS_BATCH_CE_NAME attempt $AWS_BATCH_JOB_ATTEMPT $GREETING"',
        ],
        containerOverrides={"environment": [{"name": "GREETING", "value": "hi"}]},
    )
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert job["status"] == "SUCCEEDED"
    assert job["jobQueue"].endswith(":job-queue/default")
    assert job["jobDefinition"].endswith(":job-definition/default:1")
    (attempt,) = job["attempts"]
    assert attempt["container"]["exitCode"] == 0
    assert attempt["startedAt"] <= attempt["stoppedAt"]
    assert attempt["container"]["logStreamName"]
    assert logs(head, job_id) == f"hello from {job_id} in default on local attempt 1 hi\n"


def test_exit_code_is_kept_and_job_fails(head: HeadProcess) -> None:
    job_id = submit(head, ["sh", "-c", "exit 7"])
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert job["status"] == "FAILED"
    assert job["attempts"][0]["container"]["exitCode"] == 7
    assert job["container"]["exitCode"] == 7


def test_array_children_see_their_index(head: HeadProcess, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    job_id = submit(
        head,
        ["sh", "-c", f"echo $AWS_BATCH_JOB_ARRAY_SIZE > {out}/$AWS_BATCH_JOB_ARRAY_INDEX"],
        arrayProperties={"size": 5},
    )
    parent = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert parent["status"] == "SUCCEEDED"
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 5
    assert parent["attempts"] == []
    assert sorted(os.listdir(out)) == ["0", "1", "2", "3", "4"]
    assert (out / "3").read_text() == "5\n"
    child = head.describe(f"{job_id}:3")
    assert child["arrayProperties"] == {"index": 3}
    listed = head.batch().list_jobs(arrayJobId=job_id, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(listed) == 5


def test_dependency_chain_runs_in_order(head: HeadProcess, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    first = submit(head, ["sh", "-c", f"sleep 0.3; echo first >> {trail}"])
    second = submit(head, ["sh", "-c", f"echo second >> {trail}"], dependsOn=[{"jobId": first}])
    pending = head.describe(second)
    assert pending["status"] == "PENDING"
    assert pending["statusReason"].startswith(f"waiting for dependency {first}")
    head.wait_status(second, "SUCCEEDED")
    assert trail.read_text() == "first\nsecond\n"


def test_failed_dependency_fails_dependents_with_a_reason(head: HeadProcess) -> None:
    first = submit(head, ["false"])
    second = submit(head, ["true"], dependsOn=[{"jobId": first}])
    job = head.wait_status(second, "FAILED")
    assert job["statusReason"].startswith(f"Dependent Job failed: {first}")
    assert job["attempts"] == []


def test_job_that_fails_once_is_retried_and_succeeds(head: HeadProcess) -> None:
    job_id = submit(
        head,
        ["sh", "-c", 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; test "$AWS_BATCH_JOB_ATTEMPT" = 2'],
        retryStrategy={"attempts": 3},
    )
    job = head.wait_status(job_id, "SUCCEEDED", "FAILED")
    assert job["status"] == "SUCCEEDED"
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [1, 0]
    assert logs(head, job_id, attempt=1) == "attempt 1\n"
    assert logs(head, job_id, attempt=2) == "attempt 2\n"


def test_timeout_kills_the_attempt_and_is_not_retried(head: HeadProcess) -> None:
    job_id = submit(
        head, ["sleep", "60"], timeout={"attemptDurationSeconds": 1}, retryStrategy={"attempts": 3}
    )
    job = head.wait_status(job_id, "FAILED", timeout=30)
    assert job["statusReason"] == "Job attempt duration exceeded timeout"
    assert len(job["attempts"]) == 1


def test_terminate_kills_a_running_job(head: HeadProcess, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    job_id = submit(head, ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"])
    head.wait_status(job_id, "RUNNING")
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="pid"))
    head.batch().terminate_job(jobId=job_id, reason="stop now")
    job = head.wait_status(job_id, "FAILED")
    assert job["isTerminated"] is True and job["statusReason"] == "stop now"
    wait_for(lambda: not _alive(pid), what=f"pid {pid} to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_cancel_fails_a_waiting_job(head: HeadProcess) -> None:
    blocker = submit(head, ["sleep", "60"])
    waiting = submit(head, ["true"], dependsOn=[{"jobId": blocker}])
    head.batch().cancel_job(jobId=waiting, reason="not needed")
    job = head.wait_status(waiting, "FAILED")
    assert job["isCancelled"] is True and job["statusReason"] == "not needed"
    head.batch().terminate_job(jobId=blocker, reason="cleanup")
    head.wait_status(blocker, "FAILED")


def test_a_job_too_big_for_any_node_says_why(head: HeadProcess) -> None:
    job_id = submit(
        head,
        ["true"],
        containerOverrides={"resourceRequirements": [{"type": "VCPU", "value": "64"}]},
    )
    job = head.describe(job_id)
    assert job["status"] == "RUNNABLE"
    assert job["statusReason"] == (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 64 vCPUs; the largest node in "
        "compute environments [local] has 2"
    )
    head.batch().cancel_job(jobId=job_id, reason="too big")


def test_history_tells_the_story(head: HeadProcess) -> None:
    job_id = submit(head, ["true"])
    head.wait_status(job_id, "SUCCEEDED")
    events = [e["event"] for e in head.get(f"/hpcbatch/v1/jobs/{job_id}/history")["events"]]
    assert events == ["SUBMITTED", "STARTING", "RUNNING", "SUCCEEDED"]


def test_parameters_fill_ref_placeholders(head: HeadProcess) -> None:
    batch = head.batch()
    batch.register_job_definition(
        jobDefinitionName="greeter",
        type="container",
        parameters={"who": "world"},
        containerProperties={"command": ["echo", "hello", "Ref::who"]},
    )
    plain = batch.submit_job(jobName="p", jobQueue="default", jobDefinition="greeter")["jobId"]
    given = batch.submit_job(
        jobName="p", jobQueue="default", jobDefinition="greeter", parameters={"who": "hpc"}
    )["jobId"]
    head.wait_status(plain, "SUCCEEDED")
    head.wait_status(given, "SUCCEEDED")
    assert logs(head, plain) == "hello world\n"
    assert logs(head, given) == "hello hpc\n"


def test_sequential_array_children_run_one_after_another(head: HeadProcess, tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    job_id = submit(
        head,
        ["sh", "-c", f"echo $AWS_BATCH_JOB_ARRAY_INDEX >> {trail}"],
        arrayProperties={"size": 4},
        dependsOn=[{"type": "SEQUENTIAL"}],
    )
    head.wait_status(job_id, "SUCCEEDED")
    assert trail.read_text() == "0\n1\n2\n3\n"


def test_a_command_that_cannot_start_fails_with_the_reason(head: HeadProcess) -> None:
    job_id = submit(head, ["no-such-command-hpcbatch"])
    job = head.wait_status(job_id, "FAILED")
    assert job["statusReason"].startswith("CannotStartContainerError")
    assert "no-such-command-hpcbatch" in job["statusReason"]
    assert "startedAt" not in job["attempts"][0]


def test_a_job_over_its_memory_limit_fails_as_out_of_memory(head: HeadProcess) -> None:
    nodes = head.get("/hpcbatch/v1/nodes")["nodes"]
    if "memory" not in nodes[0]["enforcement"]:
        assert os.environ.get("CI") != "true", f"CI hosts enforce memory: {nodes[0]}"
        return  # this host cannot enforce memory limits; hpcbatch nodes says so
    hog = "b = bytearray(300 * 1024 * 1024)\nfor i in range(0, len(b), 4096): b[i] = 1"
    job_id = submit(
        head,
        ["python3", "-c", hog],
        containerOverrides={"resourceRequirements": [{"type": "MEMORY", "value": "64"}]},
    )
    job = head.wait_status(job_id, "FAILED", timeout=60)
    assert job["statusReason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_a_definition_with_a_user_runs_its_jobs_as_that_user(head: HeadProcess) -> None:
    batch = head.batch()
    batch.register_job_definition(
        jobDefinitionName="as-nobody",
        type="container",
        containerProperties={"command": ["id", "-un"], "user": "nobody"},
    )
    job_id = batch.submit_job(jobName="who", jobQueue="default", jobDefinition="as-nobody")["jobId"]
    assert head.wait_status(job_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert logs(head, job_id) == "nobody\n"
    (definition,) = batch.describe_job_definitions(jobDefinitions=["as-nobody"])["jobDefinitions"]
    assert definition["containerProperties"]["user"] == "nobody"
