"""Quota shares: one scheduling pass with many RUNNABLE jobs spread over a queue's quota shares.

Builds the state through the real core (`step`): NODES nodes of 8 vCPUs on one queue with SHARES
quota shares (each an equal slice, half LEND_AND_BORROW, half LEND), fills every node with
running jobs (each share at its quota, the borrowers' on top), then queues JOBS more single jobs
over all shares and times `schedule()`:

- `full`: the steady state, every node busy and every share's queued jobs over its quota (a
  queue with quota shares is scanned past a full pool, so this is the O(queued) case);
- `preempt`: the same, plus one job of an idle lender within its quota: the pass names the
  borrower to preempt;
- `gang` (a state of its own): NODES nodes filled by one LEND_AND_BORROW share: half of them
  by 8-vCPU jobs in its quota, then, borrowed, a quarter by one 8-vCPU job each and the rest by
  one 4-vCPU and two 2-vCPU jobs each; a GANG-node job of the LEND share within its quota
  waits: the pass chooses GANG whole nodes to free with the fewest victims (one 8-vCPU borrower
  each) among the half of the nodes that can be freed.

    .venv/bin/python bench/quota_pass.py [--jobs 100000] [--shares 10] [--nodes 110] [--gang 4]
    .venv/bin/python bench/quota_pass.py --snapshot-shares 100  # GetJobQueueSnapshot (below)

- `snapshot-*` (``--snapshot-shares N``): GetJobQueueSnapshot's answer on a queue with N busy
  quota shares (see ``snapshots``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.model import JobSpec, MultiNodeSpec, NodeRange, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step


def build(jobs: int, shares: int, nodes: int, grouped: bool = False, fill: bool = True) -> State:
    state = State()
    do = lambda e: step(state, e)  # noqa: E731
    do(ev.CreateComputeEnvironment(cause="b", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"))
    for i in range(nodes):
        do(ev.NodeJoined(cause="b", now=1, node=f"n{i}", ce="ce", capacity=Resources(8000, 65536)))
    do(ev.CreateJobQueue(cause="b", now=1, name="q", priority=1, ce_order=((1, "ce"),)))
    spec = JobSpec(command=("true",))
    do(ev.RegisterJobDefinition(cause="b", now=1, name="d", def_type="container", spec=spec))
    quota = nodes * 8 // (shares + 1)  # one more share's worth stays with "idle", a lender
    names = [f"s{i}" for i in range(shares)] + ["idle"]
    for i, name in enumerate(names):
        strategy = "LEND" if name == "idle" or i % 2 else "LEND_AND_BORROW"
        do(
            ev.CreateQuotaShare(
                cause="b", now=1, name=name, queue="q", limits=(("VCPU", quota),), strategy=strategy
            )
        )
    for seq in range(
        nodes * 8 * 5 // 4 if fill else 0
    ):  # fill: the borrowers take the idle share's quota
        share = names[:-1][seq % shares]
        do(
            ev.SubmitJob(
                cause="b",
                now=1,
                job_id=f"f{seq}",
                name="f",
                queue="q",
                definition="d",
                cpu_milli=1000,
                memory_mib=512,
                share_identifier=share,
            )
        )
    for command in step(state, ev.PlanApplied(cause="b", now=2, plan=schedule(state, 2))):
        if isinstance(command, LaunchAttempt) and fill:
            do(
                ev.AttemptStarted(
                    cause="b", now=3, node=command.node, attempt_id=command.attempt_id, started_at=3
                )
            )
    for i in range(jobs):
        do(
            ev.SubmitJob(
                cause="b",
                now=4,
                job_id=f"j{i}",
                name="j",
                queue="q",
                definition="d",
                cpu_milli=1000,
                memory_mib=512,
                share_identifier=names[i * shares // jobs if grouped else i % shares],
            )
        )
    return state


def timed(state: State, repeat: int) -> tuple[float, int]:
    times, preempted = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        plan = schedule(state, 10)
        times.append((time.perf_counter() - started) * 1000)
        preempted = len(plan.preemptions)
    return statistics.median(times), preempted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--shares", type=int, default=10)
    parser.add_argument("--nodes", type=int, default=110)
    parser.add_argument("--gang", type=int, default=4)
    parser.add_argument("--snapshot-shares", type=int, default=0)
    args = parser.parse_args()
    if args.snapshot_shares:
        snapshots(args.jobs, args.snapshot_shares, args.nodes)
        return
    state = build(args.jobs, args.shares, args.nodes)
    running = sum(len(n.attempts) for n in state.nodes.values())
    ms, _ = timed(state, 5)
    print(
        json.dumps(
            {
                "case": "full",
                "runnable": args.jobs,
                "running": running,
                "shares": args.shares + 1,
                "pass_ms": round(ms, 2),
            }
        )
    )
    step(
        state,
        ev.SubmitJob(
            cause="b",
            now=5,
            job_id="lend",
            name="l",
            queue="q",
            definition="d",
            cpu_milli=1000,
            memory_mib=512,
            share_identifier="idle",
        ),
    )
    ms, preempted = timed(state, 5)
    print(
        json.dumps(
            {
                "case": "preempt",
                "runnable": args.jobs + 1,
                "preemptions": preempted,
                "pass_ms": round(ms, 2),
            }
        )
    )

    gang(args.nodes, args.gang)


def snapshots(jobs: int, shares: int, nodes: int) -> None:
    """GetJobQueueSnapshot's answer (``queue_snapshot``, as the head serves it) on the ``full``
    state with ``shares`` busy shares, the jobs submitted round robin over the shares, or share
    after share (``grouped``: the front is one share's jobs, every other share's first job is
    looked for on its own); then with every running job gone (``idle``: room in every share)."""
    from hpcbatch.head.api.fairshare_ops import queue_snapshot

    def timed_snapshot(state: State) -> tuple[float, dict[str, object]]:
        times, answer = [], {}
        for _ in range(20):
            started = time.perf_counter()
            answer = queue_snapshot(state, state.queues["q"], 10)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times), answer

    for grouped in (False, True):
        state = build(jobs, shares, nodes, grouped)
        running = sum(len(n.attempts) for n in state.nodes.values())
        cases = [("full", state, running)]
        idle = build(jobs, shares, nodes, grouped, fill=False)  # nothing runs: room in every share
        cases.append(("idle", idle, 0))
        for case, built, busy in cases:
            ms, answer = timed_snapshot(built)
            firsts = answer["frontOfQuotaShares"]["quotaShares"]  # type: ignore[index]
            print(
                json.dumps(
                    {
                        "case": f"snapshot-{case}" + ("-grouped" if grouped else ""),
                        "runnable": jobs,
                        "running": busy,
                        "shares": shares + 1,
                        "share_fronts": len(firsts),
                        "snapshot_ms": round(ms, 2),
                    }
                )
            )


def gang(nodes: int, size: int) -> None:
    """``nodes`` nodes of 8 vCPUs; share "a" (LEND_AND_BORROW, half the vCPUs) fills them all:
    half of them in its quota, the other half borrowed from "lender" (LEND, the other half of
    the vCPUs), see the module; then lender's ``size``-node job waits."""
    state = State()
    do = lambda e: step(state, e)  # noqa: E731
    do(ev.CreateComputeEnvironment(cause="b", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"))
    for i in range(nodes):
        do(ev.NodeJoined(cause="b", now=1, node=f"n{i}", ce="ce", capacity=Resources(8000, 65536)))
    do(ev.CreateJobQueue(cause="b", now=1, name="q", priority=1, ce_order=((1, "ce"),)))
    do(
        ev.RegisterJobDefinition(
            cause="b", now=1, name="d", def_type="container", spec=JobSpec(command=("true",))
        )
    )
    half = nodes * 8 // 2
    for name, strategy in (("a", "LEND_AND_BORROW"), ("lender", "LEND")):
        limits = (("VCPU", half),)
        do(
            ev.CreateQuotaShare(
                cause="b", now=1, name=name, queue="q", limits=limits, strategy=strategy
            )
        )
    quarter = nodes // 4
    rest = nodes - 2 * quarter
    seq = 0
    # in a's quota: 8-vCPU jobs on half the nodes; then borrowers: an 8-vCPU job on a quarter,
    # and on the rest one 4-vCPU and two 2-vCPU jobs (each batch placed before the next)
    for count, cpu in (
        (nodes - 2 * quarter, 8000),
        (quarter, 8000),
        (rest - quarter, 4000),
        (2 * (rest - quarter), 2000),
    ):
        for _ in range(count):
            seq += 1
            do(
                ev.SubmitJob(
                    cause="b",
                    now=1,
                    job_id=f"f{seq}",
                    name="f",
                    queue="q",
                    definition="d",
                    cpu_milli=cpu,
                    memory_mib=512,
                    share_identifier="a",
                )
            )
        for command in step(state, ev.PlanApplied(cause="b", now=2, plan=schedule(state, 2))):
            if isinstance(command, LaunchAttempt):
                do(
                    ev.AttemptStarted(
                        cause="b",
                        now=3,
                        node=command.node,
                        attempt_id=command.attempt_id,
                        started_at=3 + seq,
                    )
                )
    spec = JobSpec(command=("true",), resources=Resources(1000, 512))
    shape = MultiNodeSpec(size, 0, (NodeRange(0, size - 1, spec, True),))
    do(
        ev.RegisterJobDefinition(
            cause="b",
            now=5,
            name="mnp",
            def_type="multinode",
            spec=JobSpec(command=()),
            multinode=shape,
        )
    )
    do(
        ev.SubmitJob(
            cause="b",
            now=5,
            job_id="gang",
            name="g",
            queue="q",
            definition="mnp",
            share_identifier="lender",
        )
    )
    running = sum(len(n.attempts) for n in state.nodes.values())
    ms, preempted = timed(state, 5)
    print(
        json.dumps(
            {
                "case": "gang",
                "nodes": nodes,
                "running": running,
                "gang_nodes": size,
                "preemptions": preempted,
                "pass_ms": round(ms, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
