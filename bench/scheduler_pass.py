"""Scheduler cost: one scheduling pass with 100,000 RUNNABLE jobs queued, and the state's memory.

Builds the state through the real core (`step`), fills 4 nodes, queues N more single jobs plus
an array, then times `schedule()` over repeated passes (the cluster full, as it is in steady
state) and one pass that has free room (after a node joins). Prints JSON lines.

    .venv/bin/python bench/scheduler_pass.py [--jobs 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step


def build(jobs: int) -> State:
    state = State()
    now = 1
    step(
        state,
        ev.CreateComputeEnvironment(cause="b", now=now, name="ce", ce_type="MANAGED", kind="LOCAL"),
    )
    for i in range(4):
        step(
            state,
            ev.NodeJoined(
                cause="b", now=now, node=f"n{i}", ce="ce", capacity=Resources(8000, 32768, 0)
            ),
        )
    for q, prio in (("high", 10), ("low", 1)):
        step(
            state,
            ev.CreateJobQueue(cause="b", now=now, name=q, priority=prio, ce_order=((1, "ce"),)),
        )
    step(
        state,
        ev.RegisterJobDefinition(
            cause="b", now=now, name="d", def_type="container", spec=JobSpec(command=("true",))
        ),
    )
    for i in range(jobs // 2):
        step(
            state,
            ev.SubmitJob(
                cause="b",
                now=now,
                job_id=f"j{i}",
                name="j",
                queue="low",
                definition="d",
                timeout_s=600 if i % 3 else None,
                cpu_milli=1000 * (1 + i % 4),
            ),
        )
    step(
        state,
        ev.SubmitJob(
            cause="b",
            now=now,
            job_id="arr",
            name="a",
            queue="high",
            definition="d",
            array_size=min(10_000, jobs // 2),
        ),
    )
    remaining = jobs - jobs // 2 - min(10_000, jobs // 2)
    for i in range(remaining):
        step(
            state,
            ev.SubmitJob(
                cause="b",
                now=now,
                job_id=f"k{i}",
                name="k",
                queue="high",
                definition="d",
                cpu_milli=500,
            ),
        )
    plan = schedule(state, now)
    step(state, ev.PlanApplied(cause="b", now=now, plan=plan))
    state.changes.journal.clear()
    state.changes.dirty.clear()
    return state


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args()
    t0 = time.perf_counter()
    state = build(args.jobs)
    build_s = time.perf_counter() - t0
    runnable = sum(len(v) for v in state.runnable.values())
    times = []
    for _ in range(args.passes):
        t = time.perf_counter()
        schedule(state, 2)
        times.append((time.perf_counter() - t) * 1000)
    step(
        state,
        ev.NodeJoined(
            cause="b", now=2, node="n-new", ce="ce", capacity=Resources(64000, 262144, 0)
        ),
    )
    t = time.perf_counter()
    plan = schedule(state, 3)
    room_ms = (time.perf_counter() - t) * 1000
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "bench": "scheduler_pass",
                "runnable": runnable,
                "build_s": round(build_s, 2),
                "full_cluster_pass_ms_median": round(statistics.median(times), 3),
                "full_cluster_pass_ms_max": round(max(times), 3),
                "pass_with_room_ms": round(room_ms, 3),
                "placed": len(plan.placements),
                "max_rss_mb": round(rss_mb, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
