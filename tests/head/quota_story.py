"""The borrowing-and-preemption story of quota shares, told against any head and queue with
4 vCPUs (LOCAL nodes in tests/head, dev-cluster hosts over SSH in tests/cluster)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
SLEEP_ON_FIRST_ATTEMPT = 'test "$AWS_BATCH_JOB_ATTEMPT" = 1 && sleep 120; exit 0'


def create_share(batch: Any, queue: str, name: str, strategy: str, **more: Any) -> str:
    sharing: dict[str, Any] = {"strategy": strategy}
    sharing.update(more)
    answer = batch.create_quota_share(
        quotaShareName=name,
        jobQueue=queue,
        capacityLimits=[{"maxCapacity": 2, "capacityUnit": "VCPU"}],
        resourceSharingConfiguration=sharing,
        preemptionConfiguration={"inSharePreemption": "DISABLED"},
    )
    return str(answer["quotaShareArn"])


def submit(batch: Any, queue: str, share: str, script: str, name: str = "j") -> str:
    return str(
        batch.submit_job(
            jobName=name,
            jobQueue=queue,
            jobDefinition="default",
            shareIdentifier=share,
            containerOverrides={
                "command": ["sh", "-c", script],
                "resourceRequirements": [{"type": "VCPU", "value": "1"}],
            },
        )["jobId"]
    )


def borrow_and_preempt(head: HeadProcess, queue: str) -> None:
    """Share a (2 vCPUs, LEND_AND_BORROW) fills the queue's 4 vCPUs while share lender (2 vCPUs,
    LEND) is idle; lender submits; a's newest borrower is preempted, requeued and finishes on
    its second attempt; a's in-quota jobs and its other borrower never stop."""
    b = head.batch()
    create_share(b, queue, "a", "LEND_AND_BORROW")
    create_share(b, queue, "lender", "LEND")
    a_jobs = []
    for i in range(4):  # one at a time: their start order decides who borrows
        script = "sleep 120" if i < 3 else SLEEP_ON_FIRST_ATTEMPT
        a_jobs.append(submit(b, queue, "a", script, f"a{i}"))
        head.wait_status(a_jobs[-1], "RUNNING")
    waiting = submit(b, queue, "lender", "sleep 2", "b0")
    borrower = a_jobs[3]
    assert head.describe(waiting)["shareIdentifier"] == "lender"

    def preempted() -> dict[str, Any] | None:
        job = head.describe(borrower)
        return job if job["status"] == "RUNNABLE" and job.get("attempts") else None

    job = wait_for(preempted, 30, f"{borrower} to be preempted: {head.story(borrower)}")
    reason = job["attempts"][0]["statusReason"]
    assert (
        reason == f'Preempted: quota share "lender" needs its capacity back (job {waiting} waits)'
    )
    done = head.wait_status(borrower, "SUCCEEDED", timeout=60)
    assert len(done["attempts"]) == 2  # requeued, though its strategy allows one attempt
    assert head.wait_status(waiting, "SUCCEEDED")["status"] == "SUCCEEDED"
    for in_quota in a_jobs[:3]:  # a0, a1 within the quota; a2 borrows but one kill was enough
        job = head.describe(in_quota)
        assert (job["status"], len(job["attempts"])) == ("RUNNING", 1), job

    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    story = subprocess.run(
        [HPCBATCH, "describe", "--history", borrower],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert story.returncode == 0, story.stderr
    assert "PREEMPTED" in story.stdout and "preempted: requeued" in story.stdout
    b.terminate_jobs(jobs=a_jobs[:3], reason="test over")
