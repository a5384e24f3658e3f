"""/metrics cost (issue 11): one scrape with 100,000 jobs and 100 nodes, and what scraping every
second adds to the 10,000-child LOCAL array.

Scenarios, one JSON line each:
- metrics_scrape: the State built through the real core (`step`, as bench/scheduler_pass.py
  does): 100 nodes of 8 vCPUs, two queues, 100,000 jobs (50,000 single jobs and five arrays of
  10,000), one scheduling pass applied so 800 run; times the snapshot the loop builds
  (`build_snapshot`), the exposition of a scrape (`generate_latest`), and a whole scrape over
  HTTP from the exporter's own thread (medians of --repeat).
- metrics_array_overhead: a real head runs the 10,000-child array of `true` (as
  bench/head_throughput.py), alternately without and with a client scraping /metrics every
  second; the medians' difference in wall time and in the head process's CPU time (less
  sensitive to a busy machine), in per cent.

    .venv/bin/python -m bench.metrics_scrape [--jobs 100000] [--nodes 100] [--repeat 20]
        [--array 10000] [--array-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx
from prometheus_client import generate_latest

from bench.head_throughput import bench_array
from bench.headproc import BenchHead
from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step
from hpcbatch.head.listener import bind_listener
from hpcbatch.metrics.exporter import HeadMetrics
from hpcbatch.metrics.server import MetricsServer
from hpcbatch.metrics.snapshot import build_snapshot

ARRAY = 10_000


def build(jobs: int, nodes: int) -> State:
    state = State()
    now = 1
    step(
        state,
        ev.CreateComputeEnvironment(cause="b", now=now, name="ce", ce_type="MANAGED", kind="LOCAL"),
    )
    for i in range(nodes):
        capacity = Resources(8000, 32768, 0)
        step(state, ev.NodeJoined(cause="b", now=now, node=f"n{i}", ce="ce", capacity=capacity))
    for q, prio in (("high", 10), ("low", 1)):
        step(
            state,
            ev.CreateJobQueue(cause="b", now=now, name=q, priority=prio, ce_order=((1, "ce"),)),
        )
    spec = JobSpec(command=("true",))
    step(
        state,
        ev.RegisterJobDefinition(cause="b", now=now, name="d", def_type="container", spec=spec),
    )
    singles = jobs // 2
    for i in range(singles):
        submit = ev.SubmitJob(
            cause="b", now=now, job_id=f"j{i}", name="j", queue="low", definition="d"
        )
        step(state, submit)
    for a in range((jobs - singles) // ARRAY):
        submit = ev.SubmitJob(
            cause="b",
            now=now,
            job_id=f"arr{a}",
            name="a",
            queue="high",
            definition="d",
            array_size=ARRAY,
        )
        step(state, submit)
    plan = schedule(state, now, 200)
    step(state, ev.PlanApplied(cause="schedule", now=now, plan=plan))
    state.changes.journal.clear()
    return state


def median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 2)


def bench_scrape(jobs: int, nodes: int, repeat: int) -> dict:
    state = build(jobs, nodes)
    sessions: dict[str, object] = {}
    metrics = HeadMetrics()
    metrics.attach(state, sessions)
    snapshot_ms = median_ms(lambda: build_snapshot(state, sessions, 1), repeat)
    metrics.refresh()
    exposition_ms = median_ms(lambda: generate_latest(metrics.registry), repeat)
    listener = bind_listener("127.0.0.1:0")
    server = MetricsServer(listener.sock, metrics.registry)
    server.start()
    try:
        with httpx.Client() as client:
            url = f"{listener.url}/metrics"
            size = len(client.get(url).content)
            scrape_ms = median_ms(lambda: client.get(url).raise_for_status(), repeat)
    finally:
        server.stop()
        listener.close()
    return {
        "bench": "metrics_scrape",
        "jobs": len(state.jobs),
        "nodes": len(state.nodes),
        "snapshot_ms": snapshot_ms,
        "exposition_ms": exposition_ms,
        "http_scrape_ms": scrape_ms,
        "bytes": size,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def array_run(size: int, scrape: bool) -> tuple[float, float, list[float]]:
    """(wall seconds, the head's CPU seconds, each scrape's seconds) of one array."""
    port = free_port()
    config = f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
    stop = threading.Event()
    scrapes: list[float] = []

    def scraper() -> None:
        with httpx.Client() as client:
            while not stop.wait(1.0):
                start = time.perf_counter()
                client.get(f"http://127.0.0.1:{port}/metrics").raise_for_status()
                scrapes.append(time.perf_counter() - start)

    with (
        BenchHead(nodes=1, vcpus=32, extra_config=config) as head,
        httpx.Client(base_url=head.endpoint, timeout=30) as client,
    ):
        assert head.proc is not None
        thread = threading.Thread(target=scraper) if scrape else None
        if thread is not None:
            thread.start()
        cpu = cpu_seconds(head.proc.pid)
        try:
            seconds = float(bench_array(client, size)["seconds"])
            cpu = cpu_seconds(head.proc.pid) - cpu
        finally:
            stop.set()
            if thread is not None:
                thread.join()
    if scrape:
        assert scrapes, "no scrape answered"
    return seconds, round(cpu, 2), scrapes


def bench_array_overhead(size: int, runs: int) -> dict:
    plain: list[tuple[float, float, list[float]]] = []
    scraped: list[tuple[float, float, list[float]]] = []
    for _ in range(runs):  # alternated, so a drift of the machine hits both alike
        plain.append(array_run(size, scrape=False))
        scraped.append(array_run(size, scrape=True))
    a, b = (statistics.median(r[0] for r in runs_) for runs_ in (plain, scraped))
    ca, cb = (statistics.median(r[1] for r in runs_) for runs_ in (plain, scraped))
    each = sorted(t for r in scraped for t in r[2])
    return {
        "bench": "metrics_array_overhead",
        "children": size,
        "plain_wall_s": [r[0] for r in plain],
        "scraped_every_1s_wall_s": [r[0] for r in scraped],
        "wall_overhead_percent": round((b - a) / a * 100, 2),
        "plain_head_cpu_s": [r[1] for r in plain],
        "scraped_head_cpu_s": [r[1] for r in scraped],
        "head_cpu_overhead_percent": round((cb - ca) / ca * 100, 2),
        "scrapes": len(each),
        "scrape_ms_median": round(statistics.median(each) * 1000, 2),
        "scrape_ms_max": round(each[-1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--array", type=int, default=ARRAY)
    parser.add_argument("--array-runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(bench_scrape(args.jobs, args.nodes, args.repeat)), flush=True)
    if args.array_runs:
        print(json.dumps(bench_array_overhead(args.array, args.array_runs)), flush=True)


if __name__ == "__main__":
    main()
