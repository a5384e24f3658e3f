"""Consumable resources in the scheduling pass: what the gate costs.

Builds the state through the real core (``step``): 64 idle nodes of 8 vCPUs, a license
``lic`` and N RUNNABLE single jobs that each need 1 vCPU and 1 unit of it. Times ``schedule()``
(median of repeated passes) with the license's total at 0 (every job waits for it: the pass
must stop after ``backfill_depth`` waiting jobs, not read all N), at 64 (the pass places 64
jobs, the license the limit), and with the same jobs needing no license (the nodes the limit,
512 placements) for comparison. Prints one JSON line.

    .venv/bin/python bench/consumables_pass.py [--jobs 100000] [--passes 20]
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


def build(jobs: int, total: int, licensed: bool) -> State:
    state = State()
    b: dict[str, object] = {"cause": "b", "now": 1}
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="SSH"))  # type: ignore[arg-type]
    for i in range(64):
        step(state, ev.NodeJoined(**b, node=f"n{i:02}", ce="ce", capacity=Resources(8000, 32768)))  # type: ignore[arg-type]
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),)))  # type: ignore[arg-type]
    step(state, ev.CreateConsumableResource(**b, name="lic", total=total))  # type: ignore[arg-type]
    needs = (("lic", 1),) if licensed else ()
    spec = JobSpec(command=("true",), resources=Resources(1000, 512), consumables=needs)
    step(state, ev.RegisterJobDefinition(**b, name="d", def_type="container", spec=spec))  # type: ignore[arg-type]
    for i in range(jobs):
        step(state, ev.SubmitJob(**b, job_id=f"j{i}", name="j", queue="q", definition="d"))  # type: ignore[arg-type]
    state.changes.journal.clear()
    state.changes.dirty.clear()
    return state


def timed(state: State, passes: int) -> tuple[float, int]:
    times = []
    placed = 0
    for _ in range(passes):
        t = time.perf_counter()
        plan = schedule(state, 2)
        times.append((time.perf_counter() - t) * 1000)
        placed = len(plan.placements)
    return statistics.median(times), placed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args()
    none_ms, none_placed = timed(build(args.jobs, 0, licensed=True), args.passes)
    some_ms, some_placed = timed(build(args.jobs, 64, licensed=True), args.passes)
    free_ms, free_placed = timed(build(args.jobs, 0, licensed=False), args.passes)
    print(
        json.dumps(
            {
                "bench": "consumables_pass",
                "runnable": args.jobs,
                "all_waiting_for_license_ms_median": round(none_ms, 3),
                "placed_when_all_wait": none_placed,
                "license_of_64_ms_median": round(some_ms, 3),
                "placed_with_64_licenses": some_placed,
                "no_license_ms_median": round(free_ms, 3),
                "placed_without_licenses": free_placed,
            }
        )
    )


if __name__ == "__main__":
    main()
