"""Node-lost detection among 1,000 nodes (issue 15, point 3): a real head and ``--nodes``
simulated agents with heartbeats every ``--heartbeat-s``, each node running jobs; the whole
fleet is SIGSTOP'd (every agent silent, its link open: hung hosts), and the time until each
node is DOWN is compared with ``heartbeat_timeout_s``; then the fleet resumes and the time
until every node is ONLINE again is measured. One JSON line.

    .venv/bin/python -m bench.node_silence [--nodes 1000] [--timeout-s 10] [--heartbeat-s 2]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx

from bench.simcluster import SimCluster


def states(cluster: SimCluster) -> dict[str, dict[str, Any]]:
    nodes = httpx.get(cluster.endpoint + "/hpcbatch/v1/nodes", timeout=30).json()["nodes"]
    return {n["name"]: n for n in nodes if n["computeEnvironment"] == "sim"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--timeout-s", type=float, default=10.0, help="heartbeat_timeout_s")
    parser.add_argument("--heartbeat-s", type=float, default=2.0)
    args = parser.parse_args()
    config = f"heartbeat_timeout_s = {args.timeout_s!r}\nnode_lost_timeout_s = 600\n"
    with SimCluster(
        nodes=args.nodes,
        vcpus=8,
        run_ms=3_600_000,
        heartbeat_s=args.heartbeat_s,
        head_config=config,
    ) as cluster:
        body = {"jobName": "s", "jobQueue": "sim", "jobDefinition": "default"}
        body["arrayProperties"] = {"size": args.nodes * 4}  # type: ignore[assignment]
        httpx.post(cluster.endpoint + "/v1/submitjob", json=body, timeout=60).raise_for_status()
        deadline = time.monotonic() + 120
        while sum(n["runningJobs"] for n in states(cluster).values()) < args.nodes * 4:
            assert time.monotonic() < deadline, "the jobs never all ran"
            time.sleep(0.2)  # polling the head, bounded by the deadline
        paused = time.monotonic()
        cluster.pause_fleet()
        down_after: dict[str, float] = {}
        deadline = paused + args.timeout_s * 3 + 30
        while len(down_after) < args.nodes:
            assert time.monotonic() < deadline, f"only {len(down_after)} nodes went DOWN"
            now = time.monotonic() - paused
            for name, node in states(cluster).items():
                if node["state"] == "DOWN":
                    down_after.setdefault(name, now)
            time.sleep(0.1)  # polling the head, bounded by the deadline
        resumed = time.monotonic()
        cluster.resume_fleet()
        deadline = resumed + 120
        while not cluster.serving():
            assert time.monotonic() < deadline, "the nodes never all came back"
            time.sleep(0.1)  # polling the head, bounded by the deadline
        back_s = time.monotonic() - resumed
        kept = sum(n["runningJobs"] for n in states(cluster).values())
        times = sorted(down_after.values())
        print(
            json.dumps(
                {
                    "bench": "node_silence",
                    "nodes": args.nodes,
                    "heartbeat_s": args.heartbeat_s,
                    "heartbeat_timeout_s": args.timeout_s,
                    "first_down_s": round(times[0], 2),
                    "last_down_s": round(times[-1], 2),
                    "all_down_within_timeout_plus_s": round(times[-1] - args.timeout_s, 2),
                    "all_online_again_s": round(back_s, 2),
                    "jobs_running_after": kept,
                    "jobs_running_before": args.nodes * 4,
                }
            )
        )


if __name__ == "__main__":
    main()
