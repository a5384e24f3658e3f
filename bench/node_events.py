"""A draining, silent or lost node among N (issue 15, point 3: among 1,000 it must cost no more
than among 4). Builds the state through the real core: N nodes of 8 vCPUs, each full with 8
one-vCPU jobs that have a timeout (so a blocked job's reservation reads their ends), and a
backlog of 10,000 RUNNABLE jobs. Then, on one node, over and over: drain it and resume it;
mark it DOWN and bring it back; lose it (its 8 attempts end as Host lost and are retried) and
let it rejoin. Each event is timed as the loop runs it: its ``step``, then the scheduling pass
the loop runs after it and that pass's plan applied. One JSON line per N, milliseconds
(median over the repeats).

    .venv/bin/python -m bench.node_events [--nodes 4 1000] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobSpec, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step

SLOTS = 8  # vCPUs a node, one-vCPU jobs on each
BACKLOG = 10_000
CAPACITY = Resources(SLOTS * 1000, SLOTS * 2048, 0)


def build(nodes: int) -> State:
    state = State()
    b: dict[str, object] = {"cause": "b", "now": 1}
    step(state, ev.CreateComputeEnvironment(**b, name="ce", ce_type="MANAGED", kind="SSH"))  # type: ignore[arg-type]
    for i in range(nodes):
        step(state, ev.NodeJoined(**b, node=f"n{i:04}", ce="ce", capacity=CAPACITY))  # type: ignore[arg-type]
    step(state, ev.CreateJobQueue(**b, name="q", priority=1, ce_order=((1, "ce"),)))  # type: ignore[arg-type]
    spec = JobSpec(command=("true",), resources=Resources(1000, 2048, 0), timeout_s=3600)
    step(state, ev.RegisterJobDefinition(**b, name="d", def_type="container", spec=spec))  # type: ignore[arg-type]
    for i in range(nodes * SLOTS + BACKLOG):
        step(state, ev.SubmitJob(**b, job_id=f"j{i}", name="j", queue="q", definition="d"))  # type: ignore[arg-type]
    step(state, ev.PlanApplied(**b, plan=schedule(state, 1)))  # type: ignore[arg-type]
    for job in state.jobs.values():  # every placed attempt RUNNING, as its agent would say
        if job.attempts:
            aid = f"{job.job_id}/{job.attempts[-1].number}"
            node = job.attempts[-1].node
            step(state, ev.AttemptStarted(**b, node=node, attempt_id=aid, started_at=1, pid=1))  # type: ignore[arg-type]
    state.changes.journal.clear()
    state.changes.dirty.clear()
    return state


def loop_ms(state: State, event: ev.Event, now: int) -> float:
    """One event as the loop runs it: step, pass, plan applied."""
    started = time.perf_counter()
    step(state, event)
    plan = schedule(state, now)
    if plan.placements or plan.preemptions:
        step(state, ev.PlanApplied(cause="schedule", now=now, plan=plan))
    took = (time.perf_counter() - started) * 1000
    state.changes.journal.clear()
    state.changes.dirty.clear()
    return took


def measure(nodes: int, repeats: int) -> dict[str, object]:
    state = build(nodes)
    node = "n0000"
    now = 10
    times: dict[str, list[float]] = {}

    def timed(name: str, make: Callable[[int], ev.Event]) -> None:
        nonlocal now
        now += 1
        times.setdefault(name, []).append(loop_ms(state, make(now), now))

    def rejoin(at: int) -> ev.Event:
        return ev.NodeJoined(cause="b", now=at, node=node, ce="ce", capacity=CAPACITY)

    for _ in range(repeats):
        timed("drain", lambda at: ev.DrainNode(cause="b", now=at, node=node, reason="x"))
        timed("resume", lambda at: ev.ResumeNode(cause="b", now=at, node=node))
        timed("down", lambda at: ev.NodeDown(cause="b", now=at, node=node, reason="silent"))
        timed("back_up", rejoin)
        held = len(state.nodes[node].attempts)
        timed("lost", lambda at: ev.NodeLost(cause="b", now=at, node=node, reason="gone"))
        assert not state.nodes[node].attempts and held, "the lost node held no attempts"
        timed("rejoin_after_lost", rejoin)  # the retried jobs go back onto it
        assert len(state.nodes[node].attempts) == SLOTS, "the rejoined node was not refilled"
    out: dict[str, object] = {"bench": "node_events", "nodes": nodes, "attempts_on_node": SLOTS}
    for name, took in times.items():
        out[f"{name}_ms_median"] = round(statistics.median(took), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 1000])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    for nodes in args.nodes:
        print(json.dumps(measure(nodes, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
