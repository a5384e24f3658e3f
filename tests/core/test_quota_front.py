"""GetJobQueueSnapshot on a queue with quota shares (core/quota_front.py): the front of the queue
in the quota pass's own order, each share's first job, and each share's use."""

from __future__ import annotations

from typing import Any

from hpcbatch.core import events as ev
from hpcbatch.core.model import Job
from hpcbatch.core.quota_front import quota_front, quota_snapshot, share_fronts, share_usage
from hpcbatch.core.quota_pass import new_ledger
from hpcbatch.core.quotas import pools
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim


def shares(sim: Sim, **specs: tuple[tuple[tuple[str, int], ...], str, dict[str, Any]]) -> Sim:
    for name, (limits, strategy, extra) in specs.items():
        sim.do(ev.CreateQuotaShare, name=name, queue="q", strategy=strategy, limits=limits, **extra)
    return sim


def abr(nodes: int = 1, vcpus: int = 4) -> Sim:
    """a: 2 vCPUs LEND_AND_BORROW; b: 4 vCPUs LEND; r: 1 vCPU RESERVE."""
    return shares(
        Sim().cluster(nodes=nodes, vcpus=vcpus),
        a=((("VCPU", 2),), "LEND_AND_BORROW", {}),
        b=((("VCPU", 4),), "LEND", {}),
        r=((("VCPU", 1),), "RESERVE", {}),
    )


def submit_mix(sim: Sim) -> dict[str, Job]:
    names = ["a1", "r1", "b1", "a2", "a3", "r2", "b2", "a4", "a5"]
    return {n: sim.submit(share_identifier=n[0], job_id=n) for n in names}


def ids(jobs: list[Job] | None) -> list[str]:
    assert jobs is not None
    return [j.job_id for j in jobs]


def test_in_quota_jobs_first_then_borrowers_then_those_that_may_not_start() -> None:
    sim = abr()
    submit_mix(sim)
    queue = sim.state.queues["q"]
    # in quota, in the queue's order; a3, a4 borrow b's 2 idle vCPUs; a5 and r2 may not start
    expected = ["a1", "r1", "b1", "a2", "b2", "a3", "a4", "r2", "a5"]
    assert ids(quota_front(sim.state, queue)) == expected
    assert ids(quota_front(sim.state, queue, limit=3)) == expected[:3]


def test_the_front_is_the_order_a_pass_with_room_to_spare_places_in() -> None:
    sim = abr(vcpus=64)
    submit_mix(sim)
    front = ids(quota_front(sim.state, sim.state.queues["q"]))
    placed = [p.job_id for p in schedule(sim.state, sim.now).placements]
    assert placed == front[: len(placed)] == ["a1", "r1", "b1", "a2", "b2", "a3", "a4"]


def test_a_higher_priority_job_over_its_quota_waits_behind_in_quota_jobs() -> None:
    sim = abr(vcpus=16)
    sim.submit(share_identifier="a", job_id="a1", vcpus=2)
    for launch in sim.schedule():
        sim.start(launch)  # a is at its quota
    sim.submit(share_identifier="a", job_id="urgent", vcpus=2, priority=9)
    sim.submit(share_identifier="a", job_id="small", priority=5)
    sim.submit(share_identifier="b", job_id="b1", vcpus=2)
    sim.submit(share_identifier="b", job_id="late")
    # urgent and small come first in the queue's order, but only b's jobs are within their
    # quota; then small borrows b's last idle vCPU, and urgent (2 vCPUs) may not start now
    front = ids(quota_front(sim.state, sim.state.queues["q"]))
    assert front == ["b1", "late", "small", "urgent"]
    placed = [p.job_id for p in schedule(sim.state, sim.now).placements]
    assert placed == ["b1", "late", "small"]


def test_running_jobs_count_against_the_quota() -> None:
    sim = abr()
    submit_mix(sim)
    for launch in sim.schedule():  # a1, r1, b1, a2 (4 vCPUs: the node is full)
        sim.start(launch)
    # a and r are at their quota; b2 in quota, then a3 and a4 borrow b's 2 idle vCPUs
    assert ids(quota_front(sim.state, sim.state.queues["q"])) == ["b2", "a3", "a4", "r2", "a5"]


def test_each_share_s_first_job() -> None:
    sim = abr()
    big = sim.submit(share_identifier="a", job_id="big", vcpus=8)  # may never start
    small = sim.submit(share_identifier="a", job_id="small")
    r1 = sim.submit(share_identifier="r", job_id="r1")
    sim.submit(share_identifier="r", job_id="r2")
    queue = sim.state.queues["q"]
    front = quota_front(sim.state, queue)
    assert ids(front) == ["small", "r1", "big", "r2"]
    assert front is not None
    firsts = share_fronts(sim.state, queue, front)
    assert firsts == {"a": small, "r": r1}  # b has no RUNNABLE job
    # a share beyond the front's end: its first job within its quota all the same
    assert share_fronts(sim.state, queue, front[:1]) == {"a": small, "r": r1}
    assert share_fronts(sim.state, queue, []) == {"a": small, "r": r1}
    assert big.share == "a"


def test_a_share_s_first_is_a_borrower_or_its_first_job_when_none_is_in_quota() -> None:
    sim = abr()
    running = [sim.submit(share_identifier="a", job_id=f"run{i}") for i in range(2)]
    runr = sim.submit(share_identifier="r", job_id="runr")
    for launch in sim.schedule():
        sim.start(launch)
    assert all(j.status.name == "RUNNING" for j in [*running, runr])
    big = sim.submit(share_identifier="a", job_id="big", vcpus=8)  # over b's 4 idle vCPUs
    borrower = sim.submit(share_identifier="a", job_id="borrower")
    waiting = sim.submit(share_identifier="r", job_id="waiting")
    firsts = share_fronts(sim.state, sim.state.queues["q"], [])
    assert firsts == {"a": borrower, "r": waiting}
    assert big.share == "a"


def test_each_share_s_use_in_its_units_the_most_used_first() -> None:
    sim = shares(
        Sim().cluster(nodes=2, vcpus=4, memory=8192),
        a=((("VCPU", 2),), "LEND_AND_BORROW", {}),
        m=((("MEMORY_MIB", 4096), ("VCPU", 4)), "LEND", {}),
        idle=((("VCPU", 1), ("GPU", 1)), "RESERVE", {}),
    )
    for _ in range(3):
        sim.submit(share_identifier="a")
    sim.submit(share_identifier="m", memory=1024, vcpus=1)
    for launch in sim.schedule():
        sim.start(launch)
    usage = share_usage(sim.state, sim.state.queues["q"])
    assert [(u.name, u.usage) for u in usage] == [
        ("a", (("VCPU", 3.0),)),  # 150 % of its quota: it borrows
        ("m", (("MEMORY_MIB", 1024), ("VCPU", 1.0))),  # 25 %, in the order its limits name them
        ("idle", (("VCPU", 0.0), ("GPU", 0))),
    ]
    assert usage[0].fraction == 1.5


def test_a_queue_without_quota_shares_has_no_quota_front() -> None:
    sim = Sim().cluster()
    sim.submit()
    queue = sim.state.queues["q"]
    assert quota_front(sim.state, queue) is None
    assert share_usage(sim.state, queue) == []


def test_the_snapshot_s_three_members_at_once_match_each_alone() -> None:
    sim = abr()
    submit_mix(sim)
    for launch in sim.schedule():
        sim.start(launch)
    queue = sim.state.queues["q"]
    snap = quota_snapshot(sim.state, queue)
    assert snap is not None
    assert snap.front == quota_front(sim.state, queue)
    assert snap.firsts == share_fronts(sim.state, queue, snap.front)
    assert snap.usage == share_usage(sim.state, queue)


def test_every_share_s_pool_at_once_is_the_pool_of_each() -> None:
    sim = abr()
    submit_mix(sim)
    for launch in sim.schedule():
        sim.start(launch)
    ledger = new_ledger(sim.state, sim.state.queues["q"], {})
    assert ledger is not None
    pooled = pools(ledger.uses)
    for name in ledger.uses:
        idle, borrowed = ledger.pool(exclude=name)
        assert pooled[name] == (idle, {**dict.fromkeys(borrowed, 0), **borrowed})


def test_a_share_with_in_share_preemption_at_its_quota_is_ordered_like_any_other() -> None:
    sim = shares(
        Sim().cluster(nodes=1, vcpus=4),
        p=((("VCPU", 1),), "RESERVE", {"in_share_preemption": True}),
        b=((("VCPU", 2),), "LEND", {}),
    )
    sim.submit(share_identifier="p", job_id="p0")
    for launch in sim.schedule():
        sim.start(launch)  # p is at its quota
    for i in range(1, 4):
        sim.submit(share_identifier="p", job_id=f"p{i}", priority=9)
    sim.submit(share_identifier="b", job_id="b1")
    queue = sim.state.queues["q"]
    ledger = new_ledger(sim.state, queue, {})
    assert ledger is not None
    ledger.preempts = False
    ledger.start("quota")
    assert ledger.closed == {"p"}  # the scheduler's ledger keeps it open to find victims
    assert ids(quota_front(sim.state, queue)) == ["b1", "p1", "p2", "p3"]
