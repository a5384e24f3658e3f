"""Backfill in a fair-share queue: the first blocked job is the share most behind, and it holds
every node that could take it, not one (core/scheduler.py ``_reserve``): smaller jobs of shares
ahead of it do not take, a few vCPUs at a time, the room it waits for. They still backfill on
nodes it could never use, and where they end before it could start (timeouts)."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import Resources
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim
from tests.core.test_fairshare import fair_sim


def busy_nodes(sim: Sim, timeout_s: int | None = None) -> None:
    """Share A runs a 5-vCPU job on each 8-vCPU node: 3 vCPUs free on each."""
    for _ in range(2):
        sim.submit(queue="q", vcpus=5, share_identifier="A", timeout_s=timeout_s)
    for launch in sim.schedule():
        sim.start(launch)


def test_the_share_most_behind_keeps_every_node_it_could_use() -> None:
    sim = fair_sim(nodes=2, vcpus=8)
    busy_nodes(sim)
    big = sim.submit(queue="q", vcpus=4, share_identifier="B")  # no usage: B is served first
    small = [sim.submit(queue="q", vcpus=1, share_identifier="A") for _ in range(3)]
    plan = schedule(sim.state, sim.now)
    assert plan.placements == ()  # 6 vCPUs free, but none of A's jobs takes B's room
    assert [r.job_id for r in plan.reservations] == [big.job_id]  # one reservation in the plan
    reason = explain(sim.state, small[0], now=sim.now) or ""
    assert reason.startswith('share "A" is over its fair share: ')
    assert 'vs "B" usage 0.0 vCPU-s, 0 vCPUs running, jobs ~60 s, weight factor 3: ' in reason


def test_a_fifo_queue_still_backfills_around_one_reservation() -> None:
    """The same jobs on a FIFO queue: the blocked 4-vCPU job holds one node (EASY), and the
    1-vCPU jobs behind it start on the other."""
    sim = Sim().cluster(nodes=2, vcpus=8, queue="q")
    for _ in range(2):
        sim.submit(queue="q", vcpus=5)
    for launch in sim.schedule():
        sim.start(launch)
    big = sim.submit(queue="q", vcpus=4)
    for _ in range(3):
        sim.submit(queue="q", vcpus=1)
    plan = schedule(sim.state, sim.now)
    (reservation,) = plan.reservations
    assert reservation.job_id == big.job_id
    assert len(plan.placements) == 3
    assert {p.node for p in plan.placements} == {"local-n0", "local-n1"} - {reservation.node}


def test_nodes_it_could_never_use_still_backfill() -> None:
    sim = fair_sim(nodes=2, vcpus=8)
    busy_nodes(sim)
    sim.do(ev.NodeJoined, node="small-n", ce="local", capacity=Resources(2000, 8192, 0), gpus=())
    sim.submit(queue="q", vcpus=4, share_identifier="B")
    small = [sim.submit(queue="q", vcpus=1, share_identifier="A") for _ in range(3)]
    placed = {p.job_id: p.node for p in schedule(sim.state, sim.now).placements}
    assert placed == {small[0].job_id: "small-n", small[1].job_id: "small-n"}


def test_jobs_that_end_before_it_could_start_backfill() -> None:
    """A's running jobs have 600 s timeouts, so B's whole-node job could start in 600 s at the
    latest, leaving nothing spare: A's 1-vCPU job of 300 s backfills before it, one with no
    timeout does not."""
    sim = fair_sim(nodes=2, vcpus=8)
    busy_nodes(sim, timeout_s=600)
    sim.submit(queue="q", vcpus=8, share_identifier="B")
    short = sim.submit(queue="q", vcpus=1, share_identifier="A", timeout_s=300)
    endless = sim.submit(queue="q", vcpus=1, share_identifier="A")
    placed = [p.job_id for p in schedule(sim.state, sim.now).placements]
    assert placed == [short.job_id]
    assert endless.status.value == "RUNNABLE"
