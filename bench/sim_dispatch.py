"""A thousand nodes (issue 15, point 3): a real head with ``--nodes`` simulated agents
(bench/simcluster.py), measured three ways, one JSON line:

- heartbeats: the head's CPU over ``--idle-s`` seconds with every node connected and no job,
  as a percentage of one core (target: under 5 % for 1,000 nodes);
- dispatch: ``--jobs`` short jobs (arrays of 10,000 and the rest) from the first submit to the
  last SUCCEEDED, jobs per second, and the head's CPU per job; and the sustained rate, jobs
  finished per second between the 10th and the 90th percent of them (target: 5,000 jobs/s
  sustained), which leaves out the start (the submits still arriving) and the tail (the last
  jobs' own run time);
- every attempt checked against the fleet's record: each job ran once.

    .venv/bin/python -m bench.sim_dispatch [--nodes 1000] [--vcpus 8] [--jobs 100000]
        [--run-ms 1000] [--idle-s 20] [--profile head.prof]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import httpx

from bench.auth_submits import cpu_seconds
from bench.simcluster import SimCluster

ARRAY = 10_000


def submit(client: httpx.Client, jobs: int) -> list[str]:
    ids: list[str] = []
    left = jobs
    while left > 0:
        size = min(left, ARRAY)
        body = {"jobName": f"a{len(ids)}", "jobQueue": "sim", "jobDefinition": "default"}
        if size > 1:
            body["arrayProperties"] = {"size": size}  # type: ignore[assignment]
        response = client.post("/v1/submitjob", json=body)
        response.raise_for_status()
        ids.append(response.json()["jobId"])
        left -= size
    return ids


def succeeded(client: httpx.Client, ids: list[str]) -> int:
    count = 0
    for start in range(0, len(ids), 100):
        found = client.post("/v1/describejobs", json={"jobs": ids[start : start + 100]}).json()
        for job in found["jobs"]:
            summary = job.get("arrayProperties", {}).get("statusSummary")
            count += summary["SUCCEEDED"] if summary else job["status"] == "SUCCEEDED"
    return count


def sustained(samples: list[tuple[float, int]], jobs: int) -> float | None:
    """Jobs finished per second between the samples that first saw 10 % and 90 % of them."""
    low = next((s for s in samples if s[1] >= jobs // 10), None)
    high = next((s for s in samples if s[1] >= jobs * 9 // 10), None)
    if low is None or high is None or high[0] <= low[0]:
        return None
    return round((high[1] - low[1]) / (high[0] - low[0]), 0)


def per_job(launched: Counter[str]) -> Counter[str]:
    """Job id -> attempts run (an attempt id is ``<job id>/<n>``)."""
    jobs: Counter[str] = Counter()
    for aid, times in launched.items():
        jobs[aid.rpartition("/")[0]] += times
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--vcpus", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--run-ms", type=int, default=1000)
    parser.add_argument("--spread-ms", type=int, default=0, help="run times uniform in +-")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--heartbeat-s", type=float, default=5.0)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--profile", help="the head's cProfile stats to this file at its exit")
    args = parser.parse_args()
    began = time.monotonic()
    with (
        SimCluster(
            nodes=args.nodes,
            vcpus=args.vcpus,
            run_ms=args.run_ms,
            spread_ms=args.spread_ms,
            heartbeat_s=args.heartbeat_s,
            head_config="heartbeat_timeout_s = 30\n",
            head_args=("--profile", args.profile) if args.profile else (),
        ) as cluster,
        httpx.Client(base_url=cluster.endpoint, timeout=120) as client,
    ):
        assert cluster.head is not None
        pid = cluster.head.pid
        connected_s = time.monotonic() - began
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_s)  # measuring the idle head over a fixed window is the point
        idle_pct = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)

        assert cluster.fleet is not None
        fleet1, own1 = cpu_seconds(cluster.fleet.pid), time.process_time()
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        ids = submit(client, args.jobs)
        submitted_s = time.monotonic() - t1
        deadline = t1 + args.timeout_s
        done = 0
        samples: list[tuple[float, int]] = []
        while done < args.jobs and time.monotonic() < deadline:
            time.sleep(0.25)  # polling the head, bounded by the deadline
            done = succeeded(client, ids)
            samples.append((time.monotonic(), done))
        elapsed = time.monotonic() - t1
        head_cpu = cpu_seconds(pid) - cpu1
        fleet_cpu = cpu_seconds(cluster.fleet.pid) - fleet1
        own_cpu = time.process_time() - own1
        cluster.stop_head()  # (a profile is written as it stops)
        cluster.stop_fleet()  # its record is flushed as it stops
        launched = cluster.launched()
        print(
            json.dumps(
                {
                    "bench": "sim_dispatch",
                    "nodes": args.nodes,
                    "vcpus_each": args.vcpus,
                    "jobs": args.jobs,
                    "run_ms": args.run_ms,
                    "spread_ms": args.spread_ms,
                    "connect_all_s": round(connected_s, 1),
                    "idle_head_cpu_pct_of_core": round(idle_pct, 2),
                    "heartbeat_s": args.heartbeat_s,
                    "submit_s": round(submitted_s, 2),
                    "succeeded": done,
                    "submit_to_all_succeeded_s": round(elapsed, 1),
                    "jobs_per_s": round(done / elapsed, 0),
                    "sustained_jobs_per_s": sustained(samples, args.jobs),
                    "head_cpu_ms_per_job": round(1000 * head_cpu / max(done, 1), 3),
                    "head_cpu_share_of_core": round(head_cpu / elapsed, 2),
                    "fleet_cpu_ms_per_job": round(1000 * fleet_cpu / max(done, 1), 3),
                    "bench_client_cpu_s": round(own_cpu, 2),
                    "attempts_run": len(launched),
                    "attempts_run_twice": sum(1 for n in launched.values() if n > 1),
                    "jobs_run_twice": sum(1 for n in per_job(launched).values() if n > 1),
                    "relaunch_requests": sum(cluster.relaunch_requests().values()),
                }
            )
        )


if __name__ == "__main__":
    main()
