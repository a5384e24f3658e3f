"""Gang scheduling: all nodes of a multi-node job in one pass, on whole nodes of one CE."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.attempts import hold_node
from hpcbatch.core.explain import explain
from hpcbatch.core.invariants import InvariantViolation, check_invariants
from hpcbatch.core.model import JobSpec, JobStatus, NodeRange, Resources
from hpcbatch.core.plan import Placement
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim


def test_a_gang_gets_distinct_whole_nodes_in_one_pass() -> None:
    sim = Sim().cluster(nodes=5, vcpus=4)
    sim.gang_definition(nodes=4, vcpus=1)
    parent = sim.submit_gang()
    launches = sim.schedule()
    placements = sim.plans[-1].placements
    assert len(placements) == 4 and {p.gang for p in placements} == {parent.job_id}
    assert len({p.node for p in placements}) == 4
    assert parent.status is JobStatus.STARTING
    assert all(sim.node(parent, i).status is JobStatus.STARTING for i in range(4))
    # the main node (0) waits at the start barrier: only the others are launched
    assert sorted(launch.job_id for launch in launches) == [
        f"{parent.job_id}#{i}" for i in (1, 2, 3)
    ]
    held = [sim.state.nodes[p.node] for p in placements]
    assert all(node.allocated == node.capacity for node in held)  # the whole node


def test_a_gang_that_does_not_fit_whole_starts_no_node() -> None:
    sim = Sim().cluster(nodes=4, vcpus=4)
    sim.gang_definition(nodes=4)
    sim.submit(vcpus=1)
    (small,) = sim.schedule()
    parent = sim.submit_gang()
    assert sim.schedule() == []
    assert parent.status is JobStatus.RUNNABLE
    assert all(sim.node(parent, i).status is JobStatus.PENDING for i in range(4))
    assert sim.plans[-1].placements == ()
    assert small.node in sim.state.nodes


def test_no_other_job_is_placed_on_a_gang_s_nodes_whatever_is_free() -> None:
    sim = Sim().cluster(nodes=2, vcpus=8)
    sim.gang_definition(nodes=2, vcpus=1)
    sim.submit_gang()
    sim.schedule()
    small = sim.submit(vcpus=1)
    assert sim.schedule() == []
    assert small.status is JobStatus.RUNNABLE


def test_a_gang_stays_within_one_compute_environment() -> None:
    sim = Sim().cluster(nodes=2, ce="a")
    sim.cluster(nodes=2, ce="b", queue="q2")
    sim.do(ev.UpdateJobQueue, ref="q", ce_order=((1, "a"), (2, "b")))
    sim.gang_definition(nodes=3)
    sim.gang_definition(name="pair", nodes=2)
    wide = sim.submit_gang()
    assert sim.schedule() == []
    assert (explain(sim.state, wide) or "").startswith("MISCONFIGURATION")
    pair = sim.submit_gang(definition="pair")
    sim.schedule()
    assert pair.status is JobStatus.STARTING
    nodes = {sim.node(pair, i).attempts[-1].node for i in range(2)}
    assert nodes == {"a-n0", "a-n1"}


def test_each_node_index_gets_a_node_that_fits_its_range() -> None:
    sim = Sim().cluster(nodes=2, vcpus=2, ce="local")
    sim.do(ev.NodeJoined, node="big", ce="local", capacity=Resources(16000, 8192, 0))
    main = JobSpec(command=("m",), resources=Resources(8000, 1024, 0))
    worker = JobSpec(command=("w",), resources=Resources(1000, 512, 0))
    sim.gang_definition(nodes=3, ranges=(NodeRange(0, 0, main), NodeRange(1, 2, worker, True)))
    parent = sim.submit_gang()
    sim.schedule()
    assert sim.node(parent, 0).attempts[-1].node == "big"
    assert {sim.node(parent, i).attempts[-1].node for i in (1, 2)} == {"local-n0", "local-n1"}


def test_apply_rechecks_every_node_and_starts_none_if_one_fails() -> None:
    sim = Sim().cluster(nodes=3)
    sim.gang_definition(nodes=3)
    parent = sim.submit_gang()
    plan = schedule(sim.state, sim.now)
    assert len(plan.placements) == 3
    sim.do(ev.DrainNode, node=plan.placements[2].node, reason="admin")
    sim.do(ev.PlanApplied, plan=plan)
    assert parent.status is JobStatus.RUNNABLE
    assert all(not node.attempts for node in sim.state.nodes.values())


def test_a_waiting_gang_reserves_its_nodes_and_says_what_it_waits_for() -> None:
    sim = Sim().cluster(nodes=4, vcpus=4)
    sim.gang_definition(nodes=4)
    blocker = sim.submit(vcpus=1, timeout_s=600)
    (running,) = sim.schedule()
    sim.start(running)
    parent = sim.submit_gang()
    long = sim.submit(vcpus=1, timeout_s=6000)  # would delay the gang
    short = sim.submit(vcpus=1, timeout_s=60)  # ends before the gang could start
    started = sim.schedule()
    assert [s.job_id for s in started] == [short.job_id]
    assert long.status is JobStatus.RUNNABLE
    reservations = sim.plans[-1].reservations
    assert {r.job_id for r in reservations} == {parent.job_id} and len(reservations) == 4
    until = sim.now + 600 * 1000
    assert {r.at for r in reservations} == {until}
    reason = explain(sim.state, parent, reservations) or ""
    assert reason.startswith("waiting for 4 whole nodes: 2 free in [local], 2 busy until"), reason
    assert "reserved" in reason
    assert blocker.status is JobStatus.RUNNING


def test_a_stream_of_small_jobs_does_not_starve_a_gang() -> None:
    sim = Sim().cluster(nodes=2, vcpus=2)
    sim.gang_definition(nodes=2)
    for _ in range(2):
        sim.submit(vcpus=1, timeout_s=100)
    first = sim.schedule()
    parent = sim.submit_gang()
    for launch in first:
        sim.start(launch)
    for _ in range(5):  # small jobs keep coming, each longer than what is left
        sim.submit(vcpus=1, timeout_s=1000)
        assert sim.schedule() == []
    sim.now += 100_000
    for launch in first:
        sim.end(launch, 0)
    sim.schedule()
    assert parent.status is JobStatus.STARTING


def test_invariants_catch_another_attempt_on_a_gang_s_node() -> None:
    sim = Sim().cluster(nodes=2, vcpus=4)
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang()
    sim.schedule()
    small = sim.submit(vcpus=1)
    host = sim.state.nodes[sim.node(parent, 1).attempts[-1].node]
    host.capacity = host.capacity + Resources(1000, 512, 0)  # room, as if the gang held less
    plan = ev.PlanApplied(cause="x", now=sim.now, plan=schedule(sim.state, sim.now))
    hold_node(
        sim.state,
        small,
        Placement(small.job_id, host.name, (), False, "forced"),
        small.spec.resources,
        plan,
    )
    with pytest.raises(InvariantViolation, match="held by gang node"):
        check_invariants(sim.state)
