"""ListJobsByConsumableResource's core: finding the jobs that need one resource
(``consumable_resources.jobs_needing``), which DeleteConsumableResource also reads.

Builds the state through the real core (``step``): N jobs submitted to one queue with no nodes
(they stay RUNNABLE), every tenth needing 1 unit of the license ``lic``, the others a second
license ``other`` or nothing. Times ``jobs_needing(state, "lic")`` (median of repeated calls)
and, for scale, ``jobs_needing(state, "rare")`` for a license one job needs. Prints one JSON
line.

    .venv/bin/python bench/consumable_jobs_list.py [--jobs 100000] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from hpcbatch.core import events as ev
from hpcbatch.core.consumable_resources import jobs_needing
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.state import State
from hpcbatch.core.step import step


def build(jobs: int) -> State:
    state = State()
    b: dict[str, object] = {"cause": "b", "now": 1}
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="SSH"))  # type: ignore[arg-type]
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),)))  # type: ignore[arg-type]
    definitions = {
        "lic": (("lic", 1),),
        "other": (("other", 1),),
        "none": (),
        "rare": (("rare", 1),),
    }
    for name in ("lic", "other", "rare"):
        step(state, ev.CreateConsumableResource(**b, name=name, total=1))  # type: ignore[arg-type]
    for name, needs in definitions.items():
        spec = JobSpec(command=("true",), resources=Resources(1000, 512), consumables=needs)
        step(state, ev.RegisterJobDefinition(**b, name=name, def_type="container", spec=spec))  # type: ignore[arg-type]
    for i in range(jobs):
        definition = "lic" if i % 10 == 0 else "other" if i % 10 == 1 else "none"
        definition = "rare" if i == jobs // 2 else definition
        step(state, ev.SubmitJob(**b, job_id=f"j{i}", name="j", queue="q", definition=definition))  # type: ignore[arg-type]
    state.changes.journal.clear()
    state.changes.dirty.clear()
    return state


def timed(state: State, name: str, calls: int) -> tuple[float, int]:
    times = []
    found = 0
    for _ in range(calls):
        t = time.perf_counter()
        found = len(jobs_needing(state, name))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    state = build(args.jobs)
    lic_ms, lic_found = timed(state, "lic", args.calls)
    rare_ms, rare_found = timed(state, "rare", args.calls)
    print(
        json.dumps(
            {
                "bench": "consumable_jobs_list",
                "jobs": args.jobs,
                "lic_jobs": lic_found,
                "lic_ms_median": round(lic_ms, 3),
                "rare_jobs": rare_found,
                "rare_ms_median": round(rare_ms, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
