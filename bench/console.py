"""The web console's speed targets (issue 17), one JSON line per scenario.

- pages:    a real head (bench/simhead.py) with ``--nodes`` simulated agents and, by default,
            100,000 jobs in the system (``--arrays`` 9 arrays of 10,000 and ``--singles``
            10,000 single jobs, running for an hour, so most wait RUNNABLE): each console page
            asked ``--reads`` times over loopback by a lean client, p50 and p99 in ms (an upper
            bound on the head's own time: HTTP both ways is in it). The jobs page five ways:
            the default view, the 100th and the last page of a queue's RUNNABLE jobs, the 150th
            page of an array's children, and a name filter no job matches (the worst case: it
            reads every top-level job).
- live:     a live page's update: the job page's event stream is open, the job is cancelled
            through the API, and the time until the stream sends the region that says FAILED.
- consoles: the scheduling rate (children of a 10,000-child array run per second, jobs of
            ``--run-ms``) with no console open and with 100 jobs pages open on live updates,
            alternated ``--repeat`` times.

    .venv/bin/python -m bench.console [--nodes 100] [--reads 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import time
from typing import Any

import httpx

from bench.million import submit_singles
from bench.simcluster import SimCluster

HOUR_MS = 3_600_000


def post(client: httpx.Client, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/{operation}", json=body)
    response.raise_for_status()
    return dict(response.json())


def submit(client: httpx.Client, **body: Any) -> str:
    base = {"jobName": "b", "jobQueue": "sim", "jobDefinition": "default"}
    return str(post(client, "submitjob", {**base, **body})["jobId"])


def timed(client: httpx.Client, path: str, reads: int) -> dict[str, float]:
    took = []
    for _ in range(reads):
        started = time.perf_counter()
        response = client.get(path)
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
    took.sort()
    return {"p50_ms": round(statistics.median(took), 1), "p99_ms": round(took[-1], 1)}


def pages(nodes: int, reads: int, arrays_of_10k: int, singles_count: int) -> dict[str, Any]:
    with SimCluster(nodes=nodes, vcpus=10, run_ms=HOUR_MS) as cluster:
        client = httpx.Client(base_url=cluster.endpoint, timeout=120)
        arrays = [submit(client, arrayProperties={"size": 10_000}) for _ in range(arrays_of_10k)]
        singles = submit_singles(cluster.endpoint, ["sim"], singles_count)
        last = (len(singles) - nodes * 10) // 50  # the last page of the waiting single jobs
        views = {
            "jobs": "/console/jobs",
            "jobs_runnable_page_100": "/console/jobs?queue=sim&status=RUNNABLE&page=100",
            "jobs_runnable_last_page": f"/console/jobs?queue=sim&status=RUNNABLE&page={last}",
            "array_children_page_150": f"/console/jobs?array={arrays[0]}&page=150",
            "jobs_name_matching_none": "/console/jobs?name=no-such-name",
            "job": f"/console/jobs/{singles[-1]}",
            "array_job": f"/console/jobs/{arrays[0]}",
            "queues": "/console/queues",
            "nodes": "/console/nodes",
        }
        out: dict[str, Any] = {
            "scenario": "pages",
            "jobs_in_system": 10_000 * len(arrays) + len(singles),
            "last_page": last,
            "simulated_nodes": nodes,
        }
        for name, path in views.items():
            out[name] = timed(client, path, reads)
        return out


def live(reads: int) -> dict[str, Any]:
    with SimCluster(nodes=2, vcpus=4, run_ms=HOUR_MS) as cluster:
        client = httpx.Client(base_url=cluster.endpoint, timeout=60)
        blocker = submit(client)
        took = []
        for _ in range(reads):
            job = submit(client, dependsOn=[{"jobId": blocker}])
            with httpx.stream("GET", f"{cluster.endpoint}/console/live/jobs/{job}") as stream:
                lines = stream.iter_lines()
                for line in lines:  # the first region: PENDING
                    if "PENDING" in line:
                        break
                started = time.perf_counter()
                post(client, "canceljob", {"jobId": job, "reason": "bench"})
                for line in lines:
                    if "s-failed" in line:
                        took.append((time.perf_counter() - started) * 1000)
                        break
        took.sort()
        return {
            "scenario": "live",
            "updates": len(took),
            "p50_ms": round(statistics.median(took), 1),
            "p99_ms": round(took[-1], 1),
        }


class Consoles:
    """``count`` browsers on the jobs page's live stream, read (and dropped) by one thread's
    selector: the bench's own cost stays small beside the head's."""

    def __init__(self, port: int, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.socks = []
        request = (
            f"GET /console/live/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            self.socks.append(sock)
        self.received = 0

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in self.selector.select(min(left, 0.5)):
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                self.received += len(data)

    def close(self) -> None:
        for sock in self.socks:
            self.selector.unregister(sock)
            sock.close()


def rate(cluster: SimCluster, consoles: Consoles | None) -> float:
    client = httpx.Client(base_url=cluster.endpoint, timeout=60)
    array = submit(client, arrayProperties={"size": 10_000})
    started = time.monotonic()
    while True:
        if consoles is not None:
            consoles.drain(0.25)
        else:
            time.sleep(0.25)
        doc = post(client, "describejobs", {"jobs": [array]})["jobs"][0]
        if doc["status"] in ("SUCCEEDED", "FAILED"):
            return 10_000 / (time.monotonic() - started)


def consoles_cost(nodes: int, run_ms: int, repeat: int) -> dict[str, Any]:
    with SimCluster(nodes=nodes, vcpus=4, run_ms=run_ms) as cluster:
        without, with_100 = [], []
        received = 0
        for _ in range(repeat):
            without.append(rate(cluster, None))
            opened = Consoles(cluster.port, 100)
            try:
                with_100.append(rate(cluster, opened))
                received += opened.received
            finally:
                opened.close()
        plain, watched = statistics.median(without), statistics.median(with_100)
        return {
            "scenario": "consoles",
            "nodes": nodes,
            "run_ms": run_ms,
            "children_per_s_no_console": [round(r) for r in without],
            "children_per_s_100_consoles": [round(r) for r in with_100],
            "drop_percent": round(100 * (plain - watched) / plain, 1),
            "bytes_to_consoles": received,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--arrays", type=int, default=9, help="arrays of 10,000 (pages)")
    parser.add_argument("--singles", type=int, default=10_000, help="single jobs (pages)")
    parser.add_argument("--reads", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run-ms", type=int, default=100)
    parser.add_argument("--only", choices=("pages", "live", "consoles"))
    args = parser.parse_args()
    if args.only in (None, "pages"):
        print(json.dumps(pages(args.nodes, args.reads, args.arrays, args.singles)), flush=True)
    if args.only in (None, "live"):
        print(json.dumps(live(args.reads)), flush=True)
    if args.only in (None, "consoles"):
        print(json.dumps(consoles_cost(args.nodes, args.run_ms, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
