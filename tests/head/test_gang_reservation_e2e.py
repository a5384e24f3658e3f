"""A gang waiting behind small jobs starts within its reservation, through a real head with two
LOCAL virtual nodes (real agents): two small jobs keep both nodes partly busy; a 2-node gang
submitted after them waits, says what for, and reserves both nodes until the small jobs' time
is up; long small jobs submitted after it find room beside the running ones but do not start
ahead of it (they would delay it), a short one does (backfill); the gang starts by its
reservation, and its story (describe --history) tells the start."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.head.headproc import HeadProcess, wait_for

HPCBATCH = str(Path(sys.executable).with_name("hpcbatch"))


def _small(head: HeadProcess, name: str, seconds: float, timeout_s: int) -> str:
    reply = head.batch().submit_job(
        jobName=name,
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={
            "command": ["sleep", str(seconds)],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "256"},
            ],
        },
        timeout={"attemptDurationSeconds": timeout_s},
    )
    return str(reply["jobId"])


def _gang(head: HeadProcess) -> str:
    reply = head.batch().submit_job(
        jobName="gang",
        jobQueue="default",
        jobDefinition="default-multinode",
        nodeOverrides={
            "numNodes": 2,
            "nodePropertyOverrides": [
                {"targetNodes": "0:", "containerOverrides": {"command": ["true"]}}
            ],
        },
    )
    return str(reply["jobId"])


def _started(head: HeadProcess, job_id: str) -> int:
    return int(head.describe(job_id)["startedAt"])


def _history(head: HeadProcess, job_id: str) -> list[dict[str, Any]]:
    env = {**os.environ, "HPCBATCH_ENDPOINT": head.endpoint}
    argv = [HPCBATCH, "describe", "--history", "-o", "json", job_id]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=True)
    return list(json.loads(done.stdout)["history"][job_id])


def test_a_gang_behind_small_jobs_starts_by_its_reservation(head: HeadProcess) -> None:
    first = [_small(head, f"before-{i}", 3, 8) for i in range(2)]
    for job_id in first:
        head.wait_status(job_id, "RUNNING")
    hosts = {head.describe(j)["container"]["logStreamName"].split("/")[1] for j in first}
    assert len(hosts) == 2  # one per node: each node has 1 of its 2 vCPUs free
    gang = _gang(head)
    after = [_small(head, f"after-{i}", 20, 60) for i in range(2)]  # would delay the gang

    def reserved() -> str | None:
        reason = head.describe(gang).get("statusReason") or ""
        return reason if "reserved from" in reason else None

    reason = wait_for(reserved, 10, "the gang's reservation in its statusReason")
    assert reason.startswith("waiting for 2 whole nodes: 0 free in ["), reason
    assert "2 busy until" in reason and "smaller jobs backfill around it" in reason, reason
    at = int(re.search(r"reserved from (\d+)", reason).group(1))  # type: ignore[union-attr]
    assert at == max(_started(head, j) for j in first) + 8000  # their timeouts' end
    short = _small(head, "short", 0, 1)  # ends before the reservation: may backfill
    head.wait_status(short, "SUCCEEDED")
    for job_id in after:
        assert head.describe(job_id)["status"] == "RUNNABLE"

    done = head.wait_status(gang, "SUCCEEDED", "FAILED", timeout=30)
    assert done["status"] == "SUCCEEDED", done.get("statusReason")
    gang_start = min(_started(head, f"{gang}#{i}") for i in range(2))
    assert gang_start <= at
    for job_id in after:  # the gang's nodes are whole: they ran only once it ended
        head.wait_status(job_id, "RUNNING", "SUCCEEDED")
        assert _started(head, job_id) >= gang_start
    story = " | ".join(str(e.get("detail", "")) for e in _history(head, gang))
    assert "on 2 whole nodes of" in story, story
    held = re.search(r"started on its reservation \(reserved since (\d+), submitted", story)
    assert held is not None, story  # reserved before the short job came, by a plan of no start
    assert int(held.group(1)) < int(head.describe(short)["createdAt"]), story
    short_story = " | ".join(str(e.get("detail", "")) for e in _history(head, short))
    assert f"backfilled ahead of {gang}" in short_story, short_story
