"""Fair-share cost: one scheduling pass with 100,000 RUNNABLE jobs spread over 1,000 shares of
a queue with a scheduling policy, and GetJobQueueSnapshot of that queue.

Builds the state through the real core (``step``): 100 nodes of 8 vCPUs, a policy with 200
exact weights and 10 prefixes (``g3*``), 100,000 1-vCPU jobs (share ``s<i % 1000>``, some with
a schedulingPriority), a first pass that fills the cluster, and a round of ended attempts so
every share has decayed usage on record. Then times ``schedule()`` on the full cluster (the
steady state), a pass after 8 nodes join (it ranks the shares and places 64 jobs), the
snapshot handler's work (``fairshare_ops.queue_snapshot``: the first 100 in dispatch order and
per-share use) and, with ``--http``, GetJobQueueSnapshot over HTTP against a real head holding
the same state (loaded from its store). Prints JSON lines.

    .venv/bin/python -m bench.fairshare_pass [--jobs 100000] [--shares 1000] [--http]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.shares import ShareWeight
from hpcbatch.core.state import State
from hpcbatch.core.step import step
from hpcbatch.head.api.fairshare_ops import queue_snapshot

NODES = 100
ARN = "arn:aws:batch:local:000000000000:scheduling-policy/fair"


def build(jobs: int, shares: int) -> tuple[State, int]:
    state = State()
    now = 1_000_000
    b: dict[str, object] = {"cause": "b", "now": now}
    weights = tuple(ShareWeight(f"s{i}", 5000 + 100 * (i % 50)) for i in range(0, 200))
    weights += tuple(ShareWeight(f"g{i}*", 20000) for i in range(10))
    step(
        state,
        ev.CreateSchedulingPolicy(**b, name="fair", decay_s=3600, reservation=10, shares=weights),
    )  # type: ignore[arg-type]
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="LOCAL"))  # type: ignore[arg-type]
    for i in range(NODES):
        step(state, ev.NodeJoined(**b, node=f"n{i:03}", ce="ce", capacity=Resources(8000, 32768)))  # type: ignore[arg-type]
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),), policy_arn=ARN))  # type: ignore[arg-type]
    spec = JobSpec(command=("true",), resources=Resources(1000, 512), timeout_s=3600)
    step(state, ev.RegisterJobDefinition(**b, name="d", def_type="container", spec=spec))  # type: ignore[arg-type]
    for i in range(jobs):
        k = i % shares
        share = f"g{k % 10}x{k}" if k % 7 == 0 else f"s{k}"
        step(
            state,
            ev.SubmitJob(
                **b,  # type: ignore[arg-type]
                job_id=f"j{i}",
                name="j",
                queue="q",
                definition="d",
                share_identifier=share,
                priority=i % 3,
            ),
        )
    for _ in range(2):  # fill, end them all a minute later (usage on record), fill again
        launches = [
            c
            for c in step(state, ev.PlanApplied(cause="b", now=now, plan=schedule(state, now)))
            if isinstance(c, LaunchAttempt)
        ]
        for launch in launches:
            step(
                state,
                ev.AttemptStarted(
                    cause="b",
                    now=now,
                    node=launch.node,
                    attempt_id=launch.attempt_id,
                    started_at=now,
                ),
            )
        now += 60_000
        if _ == 0:
            for launch in launches:
                step(
                    state,
                    ev.AttemptEnded(
                        cause="b",
                        now=now,
                        node=launch.node,
                        attempt_id=launch.attempt_id,
                        stopped_at=now,
                        exit_code=0,
                    ),
                )
    state.changes.journal.clear()
    state.changes.dirty.clear()
    return state, now


def timed(fn: object, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return times


def over_http(jobs: int, shares: int) -> None:
    """GetJobQueueSnapshot over HTTP (unsigned, over loopback) against a real head holding
    ``jobs`` RUNNABLE jobs: one array of ``jobs // shares`` per share, its compute environment
    DISABLED so none starts."""
    from bench.headproc import BenchHead

    with BenchHead(nodes=1, vcpus=8) as head, httpx.Client(base_url=head.endpoint, timeout=60) as c:

        def call(operation: str, body: dict[str, object]) -> dict[str, object]:
            response = c.post(f"/v1/{operation}", json=body)
            response.raise_for_status()
            return dict(response.json())

        arn = call(
            "createschedulingpolicy",
            {"name": "fair", "fairsharePolicy": {"shareDecaySeconds": 3600}},
        )["arn"]
        call(
            "createjobqueue",
            {
                "jobQueueName": "q",
                "priority": 1,
                "schedulingPolicyArn": arn,
                "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "local"}],
            },
        )
        call(
            "registerjobdefinition",
            {
                "jobDefinitionName": "d",
                "type": "container",
                "containerProperties": {"command": ["true"]},
            },
        )
        call("updatecomputeenvironment", {"computeEnvironment": "local", "state": "DISABLED"})
        t = time.perf_counter()
        for k in range(shares):
            call(
                "submitjob",
                {
                    "jobName": "j",
                    "jobQueue": "q",
                    "jobDefinition": "d",
                    "shareIdentifier": f"s{k}",
                    "arrayProperties": {"size": jobs // shares},
                },
            )
        submit_s = time.perf_counter() - t
        times = timed(lambda: call("getjobqueuesnapshot", {"jobQueue": "q"}), 30)
        front = call("getjobqueuesnapshot", {"jobQueue": "q"})["frontOfQueue"]
        print(
            json.dumps(
                {
                    "bench": "fairshare_snapshot_http",
                    "runnable": jobs // shares * shares,
                    "shares": shares,
                    "submit_s": round(submit_s, 1),
                    "front_jobs": len(front["jobs"]),  # type: ignore[index]
                    "snapshot_http_ms_median": round(statistics.median(times), 3),
                    "snapshot_http_ms_max": round(max(times), 3),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--shares", type=int, default=1000)
    parser.add_argument("--http", action="store_true", help="also GetJobQueueSnapshot over HTTP")
    args = parser.parse_args()
    if args.http:
        over_http(args.jobs, args.shares)
    t0 = time.perf_counter()
    state, now = build(args.jobs, args.shares)
    build_s = time.perf_counter() - t0
    queue = state.queues["q"]
    runnable = len(state.runnable["q"])
    shares = len(state.fair_runnable["q"])
    full = timed(lambda: schedule(state, now), 50)
    for i in range(8):
        step(
            state,
            ev.NodeJoined(
                cause="b", now=now, node=f"x{i}", ce="ce", capacity=Resources(8000, 32768)
            ),
        )
    room: list[float] = []
    placed = 0
    for _ in range(20):
        t = time.perf_counter()
        plan = schedule(state, now)
        room.append((time.perf_counter() - t) * 1000)
        placed = len(plan.placements)
    snap = timed(lambda: queue_snapshot(state, queue, now), 50)
    print(
        json.dumps(
            {
                "bench": "fairshare_pass",
                "runnable": runnable,
                "shares_with_runnable_jobs": shares,
                "running": sum(len(n.attempts) for n in state.nodes.values()),
                "build_s": round(build_s, 1),
                "pass_full_ms_median": round(statistics.median(full), 3),
                "pass_with_room_ms_median": round(statistics.median(room), 3),
                "pass_with_room_ms_max": round(max(room), 3),
                "pass_with_room_placed": placed,
                "snapshot_ms_median": round(statistics.median(snap), 3),
                "snapshot_ms_max": round(max(snap), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
