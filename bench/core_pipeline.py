"""The head's Python work per job, in process (issue 15): a 100,000-child array on 1,000 nodes
of 8 vCPUs driven through the real core (``step``, ``schedule``), each batch's documents
encoded as the loop writes them (``persist.drain_changes``) and counted by the metrics, with
no I/O, no agents and no SQLite. Process CPU per job: steady to ~2 % from run to run where the
end-to-end benchmarks (bench/sim_dispatch.py) drift by 10 % or more, so it is the one to
measure a small change of the core's per-job cost by. One JSON line.

    .venv/bin/python -m bench.core_pipeline [--jobs 100000] [--nodes 1000] [--batch 64]
"""

from __future__ import annotations

import argparse
import json
import time

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step
from hpcbatch.head.persist import drain_changes
from hpcbatch.metrics.exporter import HeadMetrics


def build(nodes: int) -> State:
    state = State()
    b: dict[str, object] = {"cause": "b", "now": 1}
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="SSH"))  # type: ignore[arg-type]
    capacity = Resources(8000, 65536, 0)
    for i in range(nodes):
        step(state, ev.NodeJoined(**b, node=f"n{i:04}", ce="ce", capacity=capacity))  # type: ignore[arg-type]
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),)))  # type: ignore[arg-type]
    spec = JobSpec(command=("true",), resources=Resources(1000, 2048, 0))
    step(state, ev.RegisterJobDefinition(**b, name="d", def_type="container", spec=spec))  # type: ignore[arg-type]
    drain_changes(state)
    return state


def run(state: State, jobs: int, batch: int) -> float:
    """Process CPU seconds to submit, place, start and end ``jobs`` jobs."""
    metrics = HeadMetrics()
    metrics.attach(state, {})

    def commit() -> None:
        metrics.batch_committed(drain_changes(state).journal, None, None)

    began = time.process_time()
    for k in range(10):
        step(
            state,
            ev.SubmitJob(
                cause="b", now=1, job_id=f"a{k}", name="a", queue="q", definition="d",
                array_size=jobs // 10,
            ),
        )  # fmt: skip
    commit()
    now, done = 1, 0
    while done < jobs:
        now += 1
        plan = schedule(state, now)
        step(state, ev.PlanApplied(cause="schedule", now=now, plan=plan))
        commit()
        held = []
        for p in plan.placements:
            job = state.jobs[p.job_id]
            held.append((p.node, f"{job.job_id}/{job.attempts[-1].number}"))
        if not held:
            raise RuntimeError(f"nothing placed with {jobs - done} jobs left")
        for i in range(0, len(held), batch):  # agents' updates, a batch at a time
            for node, aid in held[i : i + batch]:
                step(
                    state,
                    ev.AttemptStarted(
                        cause="a", now=now, node=node, attempt_id=aid, started_at=now, pid=1
                    ),
                )
            commit()
        for i in range(0, len(held), batch):
            for node, aid in held[i : i + batch]:
                step(
                    state,
                    ev.AttemptEnded(
                        cause="a", now=now, node=node, attempt_id=aid, started_at=now,
                        stopped_at=now + 1, exit_code=0,
                    ),
                )  # fmt: skip
            commit()
        done += len(held)
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64, help="agents' updates a batch")
    args = parser.parse_args()
    cpu = run(build(args.nodes), args.jobs, args.batch)
    out = {"bench": "core_pipeline", "jobs": args.jobs, "nodes": args.nodes, "batch": args.batch}
    print(json.dumps({**out, "cpu_us_per_job": round(1e6 * cpu / args.jobs, 1)}))


if __name__ == "__main__":
    main()
