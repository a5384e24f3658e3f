"""CPU seconds used by jobs, end to end: a LOCAL agent counts them, its heartbeats carry them
as ``cpu_s``, the head keeps them on the node's session and /metrics exports them as
``hpcbatch_node_cpu_used_seconds_total``: a busy job raises it by about its CPU time, a
sleeping job by nearly nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.head.headproc import HeadProcess, wait_for
from tests.metrics.scrape import Families, metrics_head, scrape, value

SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 1.5: pass\n"
NODES = ("local-1",)


@pytest.fixture
def head(tmp_path: Path) -> Iterator[tuple[HeadProcess, str]]:
    process, url = metrics_head(tmp_path / "head", nodes=1, vcpus=2, memory=4096)
    try:
        process.start()
        yield process, url
    finally:
        process.cleanup()


def used(families: Families) -> float:
    return sum(value(families, "hpcbatch_node_cpu_used_seconds", ce="local", node=n) for n in NODES)


def run_job(process: HeadProcess, url: str, command: list[str]) -> float:
    """Run one job to success; the counter's gain, read once a heartbeat sent after the job
    ended has arrived."""
    before = used(wait_for(lambda: _with_counter(url), 30, "the node's first cpu_s"))
    response = process.batch().submit_job(
        jobName="cpu",
        jobQueue="default",
        jobDefinition="default",
        containerOverrides={"command": command},
    )
    job_id = response["jobId"]
    wait_for(lambda: process.describe(job_id)["status"] == "SUCCEEDED", 30, "the job to succeed")
    ended = time.monotonic()

    def beat_after_end() -> Families | None:
        families = scrape(url)
        age = max(
            value(families, "hpcbatch_node_heartbeat_age_seconds", ce="local", node=n)
            for n in NODES
        )
        return families if age < time.monotonic() - ended else None

    return used(wait_for(beat_after_end, 30, "a heartbeat after the job's end")) - before


def _with_counter(url: str) -> Families | None:
    families = scrape(url)
    family = families.get("hpcbatch_node_cpu_used_seconds")
    return families if family is not None and family.samples else None


def test_busy_and_sleeping_jobs_on_node_cpu_used(head: tuple[HeadProcess, str]) -> None:
    process, url = head
    busy = run_job(process, url, [sys.executable, "-c", SPIN])
    assert 1.0 <= busy < 2.5, busy
    asleep = run_job(process, url, ["sleep", "1.5"])
    assert 0 <= asleep < 0.2, asleep
