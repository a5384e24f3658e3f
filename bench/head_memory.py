"""Head memory with 100,000 RUNNABLE jobs queued (10 arrays of 10,000 in a queue with no nodes),
and the DescribeJobs / ListJobs latency a user sees at that size. Prints JSON lines.

    .venv/bin/python -m bench.head_memory [--arrays 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from bench.head_throughput import make_holding_queue
from bench.headproc import BenchHead


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arrays", type=int, default=10)
    args = parser.parse_args()
    with BenchHead() as head, httpx.Client(base_url=head.endpoint, timeout=120) as client:
        assert head.proc is not None
        before = rss_mb(head.proc.pid)
        make_holding_queue(client)
        start = time.perf_counter()
        ids = []
        for i in range(args.arrays):
            body = {
                "jobQueue": "hold",
                "jobDefinition": "default",
                "jobName": f"a{i}",
                "arrayProperties": {"size": 10_000},
            }
            ids.append(client.post("/v1/submitjob", json=body).json()["jobId"])
        submit_s = time.perf_counter() - start
        child = f"{ids[-1]}:9999"
        samples = []
        for _ in range(20):
            t = time.perf_counter()
            job = client.post("/v1/describejobs", json={"jobs": [child]}).json()["jobs"][0]
            samples.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        client.post(
            "/v1/listjobs", json={"arrayJobId": ids[0], "jobStatus": "RUNNABLE", "maxResults": 100}
        ).raise_for_status()
        list_ms = (time.perf_counter() - t) * 1000
        print(
            json.dumps(
                {
                    "bench": "head_memory",
                    "runnable_jobs": args.arrays * 10_000,
                    "submit_seconds": round(submit_s, 2),
                    "rss_before_mb": round(before, 1),
                    "rss_after_mb": round(rss_mb(head.proc.pid), 1),
                    "describe_deep_child_ms_median": round(statistics.median(samples), 2),
                    "deep_child_reason": job["statusReason"],
                    "list_jobs_page_ms": round(list_ms, 2),
                }
            )
        )


if __name__ == "__main__":
    main()
