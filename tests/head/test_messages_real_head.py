"""What a person reads, against a real head: --wait's end, reasons, refusals, hints (issue 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
NEVER = (
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 64 vCPUs; the largest node in "
    "compute environments [local] has 2"
)


def cli(head: HeadProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    return subprocess.run([HPCBATCH, *args], capture_output=True, text=True, env=env, timeout=60)


def api(head: HeadProcess, operation: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{head.endpoint}/v1/{operation.lower()}", json=body, timeout=30)


def test_wait_for_a_job_that_can_never_run_exits_6_with_the_reason(head: HeadProcess) -> None:
    done = cli(head, "submit", "--name", "big", "--vcpus", "64", "--wait", "--", "true")
    job_id = done.stdout.strip()
    assert done.returncode == 6
    assert done.stderr.splitlines()[-2:] == [
        f"job {job_id}: RUNNABLE - {NEVER}",
        f"job {job_id} (big) can never run: {NEVER}",
    ]


def test_a_failed_job_under_wait_says_its_exit_code(head: HeadProcess) -> None:
    done = cli(head, "submit", "--name", "three", "--wait", "--", "sh", "-c", "exit 3")
    job_id = done.stdout.strip()
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"job {job_id} (three) FAILED (exit 3): Essential container in task exited"
    )


def test_refusals_and_hints_say_what_to_do(head: HeadProcess) -> None:
    missing = cli(head, "submit", "--queue", "nope", "--", "true")
    assert (missing.returncode, missing.stderr) == (
        3,
        "error: jobQueue: no job queue named 'nope' (queues: default)\n",
    )
    stray = cli(head, "submit", "echo", "hi")
    assert (stray.returncode, stray.stderr) == (
        2,
        "error: the job's command goes after '--': hpcbatch submit [options] -- echo hi\n",
    )
    for verb in ("cancel", "terminate"):
        unknown = cli(head, verb, "no-such-id")
        assert (unknown.returncode, unknown.stdout, unknown.stderr) == (
            0,
            "",
            f"no such job: no-such-id (nothing to {verb})\n",
        )


def test_jobs_in_a_pipe_shows_what_is_full_whole(head: HeadProcess) -> None:
    hogs = [cli(head, "submit", "--vcpus", "2", "--", "sleep", "60").stdout.strip() for _ in "ab"]
    wait_for(lambda: cli(head, "jobs").stdout.count("RUNNING") == 2, 30, "both hogs running")
    waiting = cli(head, "submit", "--name", "w", "--", "true").stdout.strip()
    listed = cli(head, "jobs", "--state", "RUNNABLE")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith(waiting)]
    assert row.endswith(
        "waiting for capacity: every node in [local] is full: 4/4 vCPUs in use; "
        "0 jobs ahead in queue default; needs 1 vCPU, 512 MiB"
    )
    assert cli(head, "terminate", *hogs).returncode == 0


def test_job_state_time_limit_actions_round_trip_and_refuse_terminate(head: HeadProcess) -> None:
    action = {
        "reason": "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
        "state": "RUNNABLE",
        "maxTimeSeconds": 600,
        "action": "CANCEL",
    }
    made = api(
        head,
        "CreateJobQueue",
        {
            "jobQueueName": "limited",
            "priority": 1,
            "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "local"}],
            "jobStateTimeLimitActions": [action],
        },
    )
    assert made.status_code == 200, made.text
    described = api(head, "DescribeJobQueues", {"jobQueues": ["limited"]}).json()
    assert described["jobQueues"][0]["jobStateTimeLimitActions"] == [action]
    refused = api(
        head,
        "UpdateJobQueue",
        {"jobQueue": "limited", "jobStateTimeLimitActions": [{**action, "action": "TERMINATE"}]},
    )
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "jobStateTimeLimitActions[0].action: must be CANCEL on a queue of compute environments "
        "(TERMINATE is for SAGEMAKER_TRAINING service environments, which hpcbatch does not have)"
    )
    cleared = api(head, "UpdateJobQueue", {"jobQueue": "limited", "jobStateTimeLimitActions": []})
    assert cleared.status_code == 200
    described = api(head, "DescribeJobQueues", {"jobQueues": ["limited"]}).json()
    assert described["jobQueues"][0]["jobStateTimeLimitActions"] == []
