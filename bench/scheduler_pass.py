"""Scheduler cost: one scheduling pass with 100,000 RUNNABLE jobs queued, and the state's memory.

Builds the state through the real core (`step`), fills 4 nodes, queues N more single jobs plus
an array, then times `schedule()` over repeated passes (the cluster full, as it is in steady
state) and one pass that has free room (after a node joins). Prints JSON lines.

The gang case: 1,000 simulated nodes (a tenth of them busy with small jobs), a 64-node
multi-node job, alone and with 200 small jobs queued after it; times the pass that places all
64 nodes, and the pass where the gang cannot start (every node half busy) and reserves the 64
nodes where it starts soonest while the small jobs are held off them.

    .venv/bin/python bench/scheduler_pass.py [--jobs 100000] [--gang-nodes 1000] [--room-vcpus 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, MultiNodeSpec, NodeRange, Resources
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


def build_gang(nodes: int, busy_every: int, queued: int) -> State:
    state = State()
    b: dict[str, object] = {"cause": "b", "now": 1}
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="SSH"))  # type: ignore[arg-type]
    for i in range(nodes):
        step(
            state, ev.NodeJoined(**b, node=f"n{i:04}", ce="ce", capacity=Resources(8000, 32768, 0))
        )  # type: ignore[arg-type]
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),)))  # type: ignore[arg-type]
    small = JobSpec(command=("true",), resources=Resources(8000, 1024, 0), timeout_s=600)
    step(state, ev.RegisterJobDefinition(**b, name="d", def_type="container", spec=small))  # type: ignore[arg-type]
    node = JobSpec(command=("mpirun", "app"), resources=Resources(4000, 4096, 0))
    shape = MultiNodeSpec(64, 0, (NodeRange(0, 63, node, True),))
    step(
        state,
        ev.RegisterJobDefinition(
            **b,
            name="mnp",
            def_type="multinode",
            spec=JobSpec(command=()),
            multinode=shape,  # type: ignore[arg-type]
        ),
    )
    for i in range(nodes // busy_every):
        half = {"cpu_milli": 4000} if busy_every == 1 else {}
        step(state, ev.SubmitJob(**b, job_id=f"s{i}", name="s", queue="q", definition="d", **half))  # type: ignore[arg-type]
    step(state, ev.PlanApplied(**b, plan=schedule(state, 1)))  # type: ignore[arg-type]
    step(state, ev.SubmitJob(**b, job_id="gang", name="g", queue="q", definition="mnp"))  # type: ignore[arg-type]
    for i in range(queued):
        step(state, ev.SubmitJob(**b, job_id=f"w{i}", name="w", queue="q", definition="d"))  # type: ignore[arg-type]
    return state


def _median_ms(state: State, passes: int) -> tuple[float, int, int]:
    times = []
    for _ in range(passes):
        t = time.perf_counter()
        plan = schedule(state, 2)
        times.append((time.perf_counter() - t) * 1000)
    gang = sum(1 for p in plan.placements if p.gang == "gang")
    return statistics.median(times), gang, len(plan.reservations)


def gang_case(nodes: int, passes: int) -> None:
    alone_ms, placed, _ = _median_ms(build_gang(nodes, busy_every=10, queued=0), passes)
    placed_ms, _, _ = _median_ms(build_gang(nodes, busy_every=10, queued=200), passes)
    blocked_ms, blocked, reserved = _median_ms(build_gang(nodes, busy_every=1, queued=200), passes)
    print(
        json.dumps(
            {
                "bench": "scheduler_pass_gang",
                "nodes": nodes,
                "gang_nodes": 64,
                "pass_placing_gang_ms_median": round(alone_ms, 3),
                "pass_placing_gang_and_200_small_ms_median": round(placed_ms, 3),
                "gang_nodes_placed": placed,
                "pass_gang_blocked_ms_median": round(blocked_ms, 3),
                "gang_nodes_placed_when_blocked": blocked,
                "reservations_when_blocked": reserved,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--gang-nodes", type=int, default=1000)
    parser.add_argument("--room-vcpus", type=int, default=64, help="of the node that joins")
    args = parser.parse_args()
    gang_case(args.gang_nodes, args.passes)
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
            cause="b",
            now=2,
            node="n-new",
            ce="ce",
            capacity=Resources(args.room_vcpus * 1000, args.room_vcpus * 4096, 0),
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
