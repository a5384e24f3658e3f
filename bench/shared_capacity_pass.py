"""Shared limits in the scheduling pass (core/shared_capacity.py): what a pass costs when every
node is in a group, against the same pass with none.

100 SSH pool CEs of 10 hosts of 4 vCPUs each, each CE's maxvCpus 20 (its ceiling binds at
half its hosts), one queue per CE, 100,000 RUNNABLE 1-vCPU jobs spread over the queues; and
the same nodes as one machine of 2,000 CPUs (every node LOCAL on one machine, the bound the
machine's room sets at half). ``none``: the same CEs with no maxvCpus (no group). Times the
first pass (it places up to the limits) and a pass on the full cluster.

    .venv/bin/python bench/shared_capacity_pass.py [--jobs 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step

CES, HOSTS = 100, 10


def build(case: str, jobs: int) -> State:
    state = State()

    def do(event: ev.Event) -> None:
        step(state, event)

    for c in range(CES):
        ceiling = {"max_vcpus": 20} if case == "ce" else {}
        echo = {"computeResources": {"type": "SSH", "instanceTypes": ["p"]}}
        kind = "LOCAL" if case == "machine" else "SSH"
        do(
            ev.CreateComputeEnvironment(
                cause="b", now=1, name=f"ce{c}", ce_type="MANAGED", kind=kind, echo=echo, **ceiling
            )
        )
        for h in range(HOSTS):
            machine = (
                {"machine": "head", "machine_capacity": Resources(2_000_000, 1 << 40)}
                if case == "machine"
                else {}
            )
            do(
                ev.NodeJoined(
                    cause="b",
                    now=1,
                    node=f"ce{c}-h{h}",
                    ce=f"ce{c}",
                    capacity=Resources(4000, 16384),
                    **machine,
                )
            )
        do(ev.CreateJobQueue(cause="b", now=1, name=f"q{c}", priority=1, ce_order=((1, f"ce{c}"),)))
    do(
        ev.RegisterJobDefinition(
            cause="b", now=1, name="d", def_type="container", spec=JobSpec(("true",))
        )
    )
    for i in range(jobs):
        do(
            ev.SubmitJob(
                cause="b", now=2, job_id=f"j{i}", name="j", queue=f"q{i % CES}", definition="d"
            )
        )
    return state


def bench(case: str, jobs: int) -> dict[str, object]:
    state = build(case, jobs)
    start = time.perf_counter()
    plan = schedule(state, 3)
    first_ms = (time.perf_counter() - start) * 1000
    step(state, ev.PlanApplied(cause="b", now=3, plan=plan))
    full = []
    for _ in range(20):
        start = time.perf_counter()
        schedule(state, 4)
        full.append((time.perf_counter() - start) * 1000)
    return {
        "bench": "shared_capacity_pass",
        "case": case,
        "nodes": CES * HOSTS,
        "runnable": jobs,
        "placed_first_pass": len(plan.placements),
        "first_pass_ms": round(first_ms, 2),
        "full_pass_ms_median": round(statistics.median(full), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    for case in ("none", "ce", "machine"):
        print(json.dumps(bench(case, args.jobs)), flush=True)
