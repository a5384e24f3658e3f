"""A million jobs and a head killed under them (issue 15, points 2 and 4), one JSON line.

A real head (bench/simhead.py) with ``--nodes`` simulated agents of ``--vcpus`` each
(bench/simnodes.py), ``--queues`` queues on them, and ``--jobs`` jobs: per queue, arrays of
10,000 and ``--singles`` single jobs (sent by 8 clients at once). The jobs run for an hour, so
``nodes * vcpus`` of them stay RUNNING and the rest RUNNABLE. Measured:

- accepting: array children per second, single submissions per second;
- the head's RSS, the SQLite files' size per job;
- reads: DescribeJobs of one random job, a ListJobs page (the default 100 of a queue's
  RUNNABLE jobs), and `hpcbatch jobs` (the CLI's default page), p50 and p99;
- restart: `kill -9` of the head, then a new one on the same data: the time until it serves a
  read, until every node is ONLINE again (reconciled: its hello's spool replayed), and a check
  job by job: nothing lost (every job's status as before), nothing run twice (each attempt
  launched once by the fleet, no launch repeated).

    .venv/bin/python -m bench.million [--jobs 1000000] [--nodes 1000] [--vcpus 100]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.head_memory import rss_mb
from bench.rawhttp import RawClient
from bench.simcluster import SimCluster

ARRAY = 10_000
HOUR_MS = 3_600_000


def post(client: httpx.Client, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/{operation}", json=body)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def make_queues(client: httpx.Client, count: int) -> list[str]:
    names = ["sim"]
    for i in range(1, count):
        name = f"q{i}"
        order = [{"order": 1, "computeEnvironment": "sim"}]
        body = {"jobQueueName": name, "priority": 1, "computeEnvironmentOrder": order}
        post(client, "createjobqueue", body)
        names.append(name)
    return names


def submit_arrays(client: httpx.Client, queues: list[str], per_queue: int) -> list[str]:
    ids = []
    for queue in queues:
        left = per_queue
        while left > 0:
            size = min(left, ARRAY)
            body = {"jobName": "a", "jobQueue": queue, "jobDefinition": "default"}
            if size > 1:
                body["arrayProperties"] = {"size": size}  # type: ignore[assignment]
            ids.append(post(client, "submitjob", body)["jobId"])
            left -= size
    return ids


def submit_singles(endpoint: str, queues: list[str], count: int, clients: int = 8) -> list[str]:
    def one_client(k: int) -> list[str]:
        with RawClient(endpoint) as client:
            return [
                client.post(
                    "/v1/submitjob", {"jobName": "s", "jobQueue": q, "jobDefinition": "default"}
                )["jobId"]
                for q in queues
                for _ in range(k, count // len(queues), clients)
            ]

    with ThreadPoolExecutor(clients) as pool:
        return [i for ids in pool.map(one_client, range(clients)) for i in ids]


def statuses(client: httpx.Client, arrays: list[str], singles: list[str]) -> Counter[str]:
    """Every job's status, counted: arrays by their summary, single jobs one by one."""
    counts: Counter[str] = Counter()
    for start in range(0, len(arrays), 100):
        for job in post(client, "describejobs", {"jobs": arrays[start : start + 100]})["jobs"]:
            counts.update(job["arrayProperties"]["statusSummary"])
    for start in range(0, len(singles), 100):
        for job in post(client, "describejobs", {"jobs": singles[start : start + 100]})["jobs"]:
            counts[job["status"]] += 1
    return +counts


def depth(client: httpx.Client) -> Counter[str]:
    """Jobs by live status over every queue (``hpcbatch top``'s counts: no job is read)."""
    response = client.get("/hpcbatch/v1/top", params={"jobs": 1})
    response.raise_for_status()
    counts: Counter[str] = Counter()
    for queue in response.json()["queues"]:
        counts.update(queue["depth"])
    return counts


def timed_ms(call: Any, times: int) -> tuple[float, float]:
    took = []
    for _ in range(times):
        t = time.perf_counter()
        call()
        took.append((time.perf_counter() - t) * 1000)
    took.sort()
    return round(statistics.median(took), 2), round(took[int(len(took) * 0.99) - 1], 2)


def reads(cluster: SimCluster, arrays: list[str], singles: list[str]) -> dict[str, Any]:
    rng = random.Random(7)
    client = RawClient(cluster.endpoint)  # lean: the latency is the head's, not httpx's

    def describe() -> None:
        if rng.random() < 0.5 and singles:
            job = rng.choice(singles)
        else:
            job = f"{rng.choice(arrays)}:{rng.randrange(ARRAY)}"
        client.post("/v1/describejobs", {"jobs": [job]})

    def page() -> None:
        client.post("/v1/listjobs", {"jobQueue": "sim", "jobStatus": "RUNNABLE"})

    env = {**os.environ, "HPCBATCH_ENDPOINT": cluster.endpoint}
    cli = [sys.executable, "-m", "hpcbatch.cli.main", "jobs"]

    def jobs_cli() -> None:
        subprocess.run(cli, env=env, check=True, capture_output=True)

    describe_p50, describe_p99 = timed_ms(describe, 400)
    page_p50, page_p99 = timed_ms(page, 100)
    cli_p50, cli_p99 = timed_ms(jobs_cli, 10)
    client.sock.close()
    return {
        "describe_one_ms_p50": describe_p50,
        "describe_one_ms_p99": describe_p99,
        "listjobs_page_ms_p50": page_p50,
        "listjobs_page_ms_p99": page_p99,
        "hpcbatch_jobs_cli_ms_p50": cli_p50,
        "hpcbatch_jobs_cli_ms_p99": cli_p99,
    }


def store_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and ".db" in p.name)


def wait(check: Any, timeout_s: float, what: str, every_s: float = 0.05) -> float:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(what)
        time.sleep(every_s)  # polling another process, bounded by the deadline
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--queues", type=int, default=10)
    parser.add_argument("--singles", type=int, default=10_000, help="of --jobs, in all")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--vcpus", type=int, default=100)
    args = parser.parse_args()
    running_slots = args.nodes * args.vcpus
    out: dict[str, Any] = {"bench": "million", "jobs": args.jobs, "nodes": args.nodes}
    with (
        SimCluster(
            nodes=args.nodes,
            vcpus=args.vcpus,
            memory_mib=args.vcpus * 2048,  # the default definition's 2 GiB a vCPU
            run_ms=HOUR_MS,
            heartbeat_s=5.0,
            head_config="heartbeat_timeout_s = 30\n",
        ) as cluster,
        httpx.Client(base_url=cluster.endpoint, timeout=300) as client,
    ):
        assert cluster.head is not None
        queues = make_queues(client, args.queues)
        per_queue = (args.jobs - args.singles) // args.queues
        t = time.monotonic()
        arrays = submit_arrays(client, queues, per_queue)
        out["array_children_per_s"] = round(per_queue * len(queues) / (time.monotonic() - t))
        t = time.monotonic()
        singles = submit_singles(cluster.endpoint, queues, args.singles)
        out["singles_per_s"] = round(len(singles) / (time.monotonic() - t))
        total = per_queue * len(queues) + len(singles)
        running = min(running_slots, total)

        def settled() -> bool:
            return depth(client).get("RUNNING", 0) >= running

        out["all_running_s"] = round(wait(settled, 600, "jobs to start", every_s=2), 1)
        before = statuses(client, arrays, singles)
        out["statuses"] = dict(before)
        out["head_rss_mb"] = round(rss_mb(cluster.head.pid))
        data = cluster.dir / "data"
        out["sqlite_bytes_per_job"] = round(store_bytes(data) / total)
        out.update(reads(cluster, arrays, singles))

        cluster.kill_head()
        began = time.monotonic()
        cluster.start_head(wait=False)

        def reads_again() -> bool:
            try:
                post(client, "describejobs", {"jobs": [singles[-1]]})
            except httpx.HTTPError:
                return False
            return True

        out["restart_serves_reads_s"] = round(wait(reads_again, 600, "reads"), 2)
        wait(cluster.serving, 600, "every node ONLINE")
        out["restart_all_nodes_online_s"] = round(time.monotonic() - began, 2)
        after = statuses(client, arrays, singles)
        out["statuses_after_restart"] = dict(after)
        out["head_rss_mb_after_restart"] = round(rss_mb(cluster.head.pid))
        cluster.stop_head()
        cluster.stop_fleet()
        launched = cluster.launched()
        out["attempts_run"] = len(launched)
        out["attempts_run_twice"] = sum(1 for n in launched.values() if n > 1)
        out["relaunch_requests"] = sum(cluster.relaunch_requests().values())
        out["nothing_lost"] = after == before
    print(json.dumps(out))


if __name__ == "__main__":
    main()
