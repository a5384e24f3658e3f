"""The borrowing-and-preemption stories of quota shares, told against any head and queue: with
4 vCPUs (LOCAL nodes in tests/head, dev-cluster hosts over SSH in tests/cluster), and for a
multi-node job, with three 2-vCPU nodes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))
SLEEP_ON_FIRST_ATTEMPT = 'test "$AWS_BATCH_JOB_ATTEMPT" = 1 && sleep 120; exit 0'
# The same, taking 2 s to stop when killed on its first attempt (so a waiting job can be seen
# waiting for it): SIGTERM ends the sleep, the trap takes its time.
SLOW_TO_STOP_ON_FIRST_ATTEMPT = (
    'if [ "$AWS_BATCH_JOB_ATTEMPT" = 1 ]; then trap "sleep 2; exit 143" TERM; sleep 120 & wait; fi'
)


def create_share(
    batch: Any, queue: str, name: str, strategy: str, vcpus: int = 2, **more: Any
) -> str:
    sharing: dict[str, Any] = {"strategy": strategy}
    sharing.update(more)
    answer = batch.create_quota_share(
        quotaShareName=name,
        jobQueue=queue,
        capacityLimits=[{"maxCapacity": vcpus, "capacityUnit": "VCPU"}],
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


def register_gang(batch: Any, name: str, script: str) -> None:
    """A 2-node definition whose nodes both run ``script``."""
    container = {
        "command": ["sh", "-c", script],
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "256"},
        ],
    }
    batch.register_job_definition(
        jobDefinitionName=name,
        type="multinode",
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
        },
    )


def submit_gang(batch: Any, queue: str, share: str, definition: str) -> str:
    answer = batch.submit_job(
        jobName=definition, jobQueue=queue, jobDefinition=definition, shareIdentifier=share
    )
    return str(answer["jobId"])


def gang_takes_its_quota_back(head: HeadProcess, queue: str) -> None:
    """Three 2-vCPU nodes. Share a (2 vCPUs, LEND_AND_BORROW) runs an in-quota job on one node
    and a 2-node borrower on the two others; share b (4 vCPUs, LEND) submits a 2-node job,
    within its quota: the borrower is preempted whole (its nodes on two hosts), b's gang runs
    on the freed nodes, the borrower is requeued and runs again (second attempt, exit 0); a's
    in-quota job never stops."""
    b = head.batch()
    create_share(b, queue, "a", "LEND_AND_BORROW")
    create_share(b, queue, "b", "LEND", vcpus=4)
    register_gang(b, "borrowing", SLOW_TO_STOP_ON_FIRST_ATTEMPT)
    register_gang(b, "owning", "sleep 1")
    in_quota = submit(b, queue, "a", "sleep 120", "a-in-quota")
    head.wait_status(in_quota, "RUNNING")
    borrower = submit_gang(b, queue, "a", "borrowing")
    head.wait_status(borrower, "RUNNING")
    owner = submit_gang(b, queue, "b", "owning")

    def preempted() -> dict[str, Any] | None:
        node = head.describe(f"{borrower}#0")
        ended = [a for a in node.get("attempts", []) if a.get("statusReason")]
        return node if ended else None

    def waits_for_it() -> str | None:
        reason = str(head.describe(owner).get("statusReason"))
        return reason if "preempted" in reason else None

    why = wait_for(waits_for_it, 30, f"{owner} to wait for {borrower}: {head.story(owner, 2)}")
    assert why == (
        f'within quota share "b"\'s quota: waiting for 1 preempted job(s) to stop ({borrower})'
    )
    what = f"{borrower} to be preempted: {head.story(borrower, 2)}"
    node = wait_for(preempted, 30, what)
    reason = node["attempts"][0]["statusReason"]
    assert reason == f'Preempted: quota share "b" needs its capacity back (job {owner} waits)'
    done = head.wait_status(owner, "SUCCEEDED", "FAILED", timeout=30)
    assert done["status"] == "SUCCEEDED", head.story(owner, 2)
    again = head.wait_status(borrower, "SUCCEEDED", "FAILED", timeout=30)
    assert again["status"] == "SUCCEEDED", head.story(borrower, 2)
    for i in range(2):  # requeued whole, though no retry strategy: the preemption is not counted
        attempts = head.describe(f"{borrower}#{i}")["attempts"]
        assert len(attempts) == 2, attempts
        assert attempts[0]["statusReason"].startswith("Preempted: "), attempts
    job = head.describe(in_quota)
    assert (job["status"], len(job["attempts"])) == ("RUNNING", 1), job
    b.terminate_jobs(jobs=[in_quota], reason="test over")


def submit_sized(
    batch: Any, queue: str, share: str, name: str, memory: int, priority: int = 0
) -> str:
    """A 1-vCPU job of ``memory`` MiB that sleeps until the test ends."""
    return str(
        batch.submit_job(
            jobName=name,
            jobQueue=queue,
            jobDefinition="default",
            shareIdentifier=share,
            schedulingPriorityOverride=priority,
            containerOverrides={
                "command": ["sh", "-c", "sleep 120"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": str(memory)},
                ],
            },
        )["jobId"]
    )


def snapshot_scene(head: HeadProcess, queue: str) -> dict[str, str]:
    """Two 2-vCPU, 4096-MiB nodes; share a (2 vCPUs, LEND_AND_BORROW, borrowLimit 100 %) runs
    a0 and a1 (1 vCPU, 3072 MiB each: its quota) and a2 (1 vCPU, 1024 MiB), which borrows from
    share b (4 vCPUs, LEND); both nodes are then out of memory for 2048 MiB. Waiting, in
    submission order: a4, b1, then a3 at schedulingPriority 5 (each 1 vCPU, 2048 MiB), so the
    queue's order is a3, a4, b1 and none can start (nor be given room by a preemption: freeing a2
    leaves 1024 MiB). The quota pass's order: b1 (within b's quota), a3 (borrows 2 vCPUs of b's
    3 idle, a's limit), then a4 (it would borrow 3: over the limit). Returns the job ids by name.
    """
    b = head.batch()
    create_share(b, queue, "a", "LEND_AND_BORROW", borrowLimit=100)
    create_share(b, queue, "b", "LEND", vcpus=4)
    ids: dict[str, str] = {}
    for name, memory in (("a0", 3072), ("a1", 3072), ("a2", 1024)):  # one at a time
        ids[name] = submit_sized(b, queue, "a", name, memory)
        head.wait_status(ids[name], "RUNNING")
    ids["a4"] = submit_sized(b, queue, "a", "a4", 2048)
    ids["b1"] = submit_sized(b, queue, "b", "b1", 2048)
    ids["a3"] = submit_sized(b, queue, "a", "a3", 2048, priority=5)
    for name in ("a3", "a4", "b1"):
        head.wait_status(ids[name], "RUNNABLE")
    return ids
