"""Scrapes while a 10,000-child array bursts through a real head answer whole, and the counters
end exact."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.head.headproc import wait_for
from tests.metrics.scrape import metrics_head, scrape, value

CHILDREN = 10_000


@pytest.mark.slow
def test_scrapes_during_a_10000_child_burst_answer_whole(tmp_path: Path) -> None:
    head, url = metrics_head(tmp_path / "head", nodes=1, vcpus=32, memory=65536)
    statuses: list[int] = []
    depths: list[float] = []
    stop = threading.Event()

    def scraper() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.wait(0.2):
                response = client.get(url)
                statuses.append(response.status_code)
                families = {f.name: f for f in text_string_to_metric_families(response.text)}
                depths.append(sum(s.value for s in families["hpcbatch_queue_jobs"].samples))

    try:
        head.start()
        thread = threading.Thread(target=scraper)
        thread.start()
        try:
            job = head.batch().submit_job(
                jobName="burst",
                jobQueue="default",
                jobDefinition="default",
                arrayProperties={"size": CHILDREN},
                containerOverrides={"command": ["true"]},
            )["jobId"]
            head.wait_status(job, "SUCCEEDED", timeout=300)

            def counted() -> bool:
                f = scrape(url)
                return (
                    value(f, "hpcbatch_jobs_finished", queue="default", status="SUCCEEDED")
                    == CHILDREN
                )

            wait_for(counted, 10, "10,000 children counted")
        finally:
            stop.set()
            thread.join()
        assert set(statuses) == {200}
        assert max(depths) > 0  # scrapes saw the children queued
        assert all(0 <= d <= CHILDREN for d in depths)
        families = scrape(url)
        assert value(families, "hpcbatch_jobs_submitted", queue="default") == CHILDREN
        assert value(families, "hpcbatch_attempts", queue="default") == CHILDREN
    finally:
        head.cleanup()


SUBMISSIONS = 10_000
SENDERS = 8


@pytest.mark.slow
def test_scrapes_during_a_burst_of_10000_submit_job_calls_answer_whole(tmp_path: Path) -> None:
    """10,000 SubmitJob calls from 8 senders at once (the head group-commits them), scraped every
    0.2 s: every scrape answers 200 with a queue depth in range, and the submission counter ends at
    exactly the number of calls the API accepted."""
    head, url = metrics_head(tmp_path / "head", nodes=1, vcpus=32, memory=65536)
    statuses: list[int] = []
    depths: list[float] = []
    accepted: list[int] = []
    stop = threading.Event()
    body = {
        "jobName": "b",
        "jobQueue": "default",
        "jobDefinition": "default",
        "containerOverrides": {"command": ["true"]},
    }

    def scraper() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.wait(0.2):
                response = client.get(url)
                statuses.append(response.status_code)
                families = {f.name: f for f in text_string_to_metric_families(response.text)}
                depths.append(sum(s.value for s in families["hpcbatch_queue_jobs"].samples))

    def sender(count: int) -> None:
        ok = 0
        with httpx.Client(base_url=head.endpoint, timeout=30) as client:
            for _ in range(count):
                ok += client.post("/v1/submitjob", json=body).status_code == 200
        accepted.append(ok)

    try:
        head.start()
        watcher = threading.Thread(target=scraper)
        watcher.start()
        senders = [
            threading.Thread(target=sender, args=(SUBMISSIONS // SENDERS,)) for _ in range(SENDERS)
        ]
        try:
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()
            assert sum(accepted) == SUBMISSIONS

            def counted() -> bool:
                families = scrape(url)
                finished = value(
                    families, "hpcbatch_jobs_finished", queue="default", status="SUCCEEDED"
                )
                return finished == SUBMISSIONS

            wait_for(counted, 300, "10,000 jobs finished and counted")
        finally:
            stop.set()
            watcher.join()
        assert set(statuses) == {200}, sorted(set(statuses))
        assert max(depths) > 0  # scrapes saw jobs queued
        assert all(0 <= d <= SUBMISSIONS for d in depths)
        assert value(scrape(url), "hpcbatch_jobs_submitted", queue="default") == SUBMISSIONS
    finally:
        head.cleanup()
