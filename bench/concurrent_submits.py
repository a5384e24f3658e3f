"""Separate submissions (issue 15, point 5): ``--submits`` SubmitJob calls from ``--clients``
keep-alive clients at once, through the API of a real head (bench/simhead.py) whose
``--nodes`` simulated agents run the jobs meanwhile (``--run-ms`` each). One JSON line: calls
per second, the head's CPU per call, the latency a client saw (p50, p99), and that every job
was accepted once. Meanwhile one more client reads (DescribeJobs of one job, over and over):
its latency during the burst says whether a burst of submissions starves other clients' reads.

    .venv/bin/python -m bench.concurrent_submits [--submits 10000] [--clients 8] [--nodes 4]
        [--profile head.prof]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.auth_submits import cpu_seconds
from bench.rawhttp import RawClient
from bench.simcluster import SimCluster

BODY = {"jobQueue": "sim", "jobDefinition": "default", "jobName": "s"}


def client_run(endpoint: str, count: int) -> tuple[list[str], list[float]]:
    ids, took = [], []
    with RawClient(endpoint) as client:
        request = client.request("/v1/submitjob", BODY)
        for _ in range(count):
            t = time.perf_counter()
            status, answer = client.send(request)
            took.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"SubmitJob: HTTP {status}: {answer[:500]!r}")
            ids.append(json.loads(answer)["jobId"])
    return ids, took


def reader(endpoint: str, job_id: str, stop: threading.Event) -> list[float]:
    took = []
    with RawClient(endpoint) as client:
        request = client.request("/v1/describejobs", {"jobs": [job_id]})
        while not stop.is_set():
            t = time.perf_counter()
            status, answer = client.send(request)
            took.append(time.perf_counter() - t)
            if status != 200 or json.loads(answer)["jobs"][0]["jobId"] != job_id:
                raise RuntimeError(f"DescribeJobs: HTTP {status}: {answer[:500]!r}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submits", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--run-ms", type=int, default=200)
    parser.add_argument("--profile", help="the head's cProfile stats to this file at its exit")
    args = parser.parse_args()
    with SimCluster(
        nodes=args.nodes,
        vcpus=8,
        run_ms=args.run_ms,
        head_args=("--profile", args.profile) if args.profile else (),
    ) as cluster:
        assert cluster.head is not None
        warm, _ = client_run(cluster.endpoint, 50)  # connections and code paths warm
        per = args.submits // args.clients
        stop = threading.Event()
        assert cluster.fleet is not None
        fleet0, own0 = cpu_seconds(cluster.fleet.pid), time.process_time()
        cpu0, t0 = cpu_seconds(cluster.head.pid), time.monotonic()
        with ThreadPoolExecutor(args.clients + 1) as pool:
            reads = pool.submit(reader, cluster.endpoint, warm[0], stop)
            runs = list(pool.map(lambda _: client_run(cluster.endpoint, per), range(args.clients)))
            stop.set()
            read_took = sorted(reads.result())
        elapsed = time.monotonic() - t0
        head_cpu = cpu_seconds(cluster.head.pid) - cpu0
        fleet_cpu = cpu_seconds(cluster.fleet.pid) - fleet0
        clients_cpu = time.process_time() - own0
        ids = [i for run_ids, _ in runs for i in run_ids]
        took = sorted(t for _, run_took in runs for t in run_took)
        cluster.stop_head()
        print(
            json.dumps(
                {
                    "bench": "concurrent_submits",
                    "clients": args.clients,
                    "submits": len(ids),
                    "nodes": args.nodes,
                    "submits_per_s": round(len(ids) / elapsed),
                    "head_cpu_ms_per_submit": round(1000 * head_cpu / len(ids), 3),
                    "clients_cpu_ms_per_submit": round(1000 * clients_cpu / len(ids), 3),
                    "fleet_cpu_ms_per_submit": round(1000 * fleet_cpu / len(ids), 3),
                    "latency_ms_p50": round(1000 * took[len(took) // 2], 2),
                    "latency_ms_p99": round(1000 * took[int(len(took) * 0.99)], 2),
                    "distinct_job_ids": len(set(ids)),
                    "reads_during": len(read_took),
                    "read_ms_p50": round(1000 * read_took[len(read_took) // 2], 2),
                    "read_ms_p99": round(1000 * read_took[int(len(read_took) * 0.99)], 2),
                }
            )
        )


if __name__ == "__main__":
    main()
