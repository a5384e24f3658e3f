"""A job that held a reservation in the last applied plan starts "on its reservation": a gang
and a single job alike, with when it was first reserved and when it was submitted; one that
never waited still "started immediately", one behind a blocked job is "backfilled"."""

from __future__ import annotations

from hpcbatch.core import reserved
from hpcbatch.core.model import JobStatus
from hpcbatch.core.plan import Plan
from tests.core.sim import Sim


def test_a_gang_that_waited_on_its_reservation_says_so_and_since_when() -> None:
    sim = Sim().cluster(nodes=2, vcpus=2)
    sim.gang_definition(nodes=2)
    first = [sim.submit(vcpus=1, timeout_s=100) for _ in range(2)]
    running = sim.schedule()
    assert {launch.job_id for launch in running} == {job.job_id for job in first}
    for launch in running:
        sim.start(launch)
    submitted = sim.now
    parent = sim.submit_gang()
    sim.now += 5_000
    reserved_at = sim.now
    assert sim.schedule() == []
    assert sim.state.reserved_since == {parent.job_id: reserved_at}
    sim.now += 5_000
    assert sim.schedule() == []  # still reserved: its time stays the first one
    assert sim.state.reserved_since == {parent.job_id: reserved_at}
    sim.now += 90_000
    for launch in running:
        sim.end(launch, 0)
    sim.schedule()
    assert parent.status is JobStatus.STARTING
    expected = (
        f"started on its reservation (reserved since {reserved_at}, submitted {submitted}; "
        "epoch ms) on 2 whole nodes of local"
    )
    assert parent.start_reason == expected
    assert sim.node(parent, 1).start_reason == expected
    assert sim.state.reserved_since == {}  # started: no longer reserved


def test_a_gang_that_never_waited_started_immediately() -> None:
    sim = Sim().cluster(nodes=2, vcpus=2)
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang()
    sim.schedule()
    assert parent.start_reason == "started immediately on 2 whole nodes of local"


def test_a_single_job_that_waited_on_its_reservation_says_so() -> None:
    sim = Sim().cluster(nodes=1, vcpus=4)
    sim.submit(vcpus=3, timeout_s=60)
    (running,) = sim.schedule()
    sim.start(running)
    big = sim.submit(vcpus=4)
    submitted = sim.now
    assert sim.schedule() == []
    assert sim.state.reserved_since == {big.job_id: submitted}
    sim.now += 60_000
    sim.end(running, 0)
    sim.schedule()
    assert big.start_reason == (
        f"started on its reservation (reserved since {submitted}, submitted {submitted}; epoch ms)"
    )
    assert big.status is JobStatus.STARTING
    assert sim.state.reserved_since == {}


def test_a_reservation_that_lapses_is_forgotten_and_starts_again() -> None:
    sim = Sim().cluster(nodes=1, vcpus=4)
    sim.submit(vcpus=3)
    (running,) = sim.schedule()
    sim.start(running)
    waiting = sim.submit(vcpus=4)
    sim.schedule()
    assert set(sim.state.reserved_since) == {waiting.job_id}
    assert reserved.changes(sim.state, Plan())  # a plan reserving nothing changes the record
    reserved.record(sim.state, Plan(), sim.now)
    assert sim.state.reserved_since == {}
    assert not reserved.changes(sim.state, Plan())
    sim.now += 1_000
    sim.schedule()
    assert sim.state.reserved_since == {waiting.job_id: sim.now}
