"""A blocked gang's reservation prefers one placement group, the one try_gang would choose at
the soonest time the gang could start, and never waits longer for the sake of a group."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import Job, JobSpec
from hpcbatch.core.plan import Reservation
from tests.core.sim import Sim


def _cluster(groups: list[str | None], busy_for_s: list[int]) -> Sim:
    """Nodes n0.. in ``groups``, each busy (3 of 4 vCPUs) with one job ending after ``busy_for_s``."""
    sim = Sim().grouped_cluster(groups)
    sim.do(ev.RegisterJobDefinition, name="d", def_type="container", spec=JobSpec(("true",)))
    for i, seconds in enumerate(busy_for_s):
        sim.submit(vcpus=3, timeout_s=seconds)  # 1 vCPU left: backfill room
        (launch,) = sim.schedule()
        assert launch.node == f"n{i}"
        sim.start(launch)
    return sim


def _reserve(sim: Sim, nodes: int = 2) -> tuple[Job, tuple[Reservation, ...]]:
    sim.gang_definition(nodes=nodes)
    parent = sim.submit_gang()
    assert sim.schedule() == []
    reservations = sim.plans[-1].reservations
    assert {r.job_id for r in reservations} == {parent.job_id}
    return parent, reservations


def test_the_reservation_is_inside_a_group_that_holds_the_gang_as_soon_as_any_nodes() -> None:
    # by free time alone it would take n0 (10 s) and n2 (20 s), across both groups
    sim = _cluster(["a", "a", "b", "b"], [10, 30, 20, 20])
    parent, reservations = _reserve(sim)
    assert {r.node for r in reservations} == {"n2", "n3"}
    assert {r.at for r in reservations} == {sim.now + 20_000}
    reason = explain(sim.state, parent, reservations) or ""
    assert "in placement group b" in reason, reason


def test_of_two_groups_the_one_with_more_nodes_free_by_then_wins_as_in_try_gang() -> None:
    sim = _cluster(["a", "a", "b", "b", "b"], [10, 10, 10, 10, 10])
    _, reservations = _reserve(sim)
    assert {r.node for r in reservations} == {"n2", "n3"}


def test_no_group_holds_it_as_soon_so_the_reservation_spans_the_ce() -> None:
    sim = _cluster(["a", "a", "b", "b"], [10, 40, 10, 40])
    parent, reservations = _reserve(sim)
    assert {r.node for r in reservations} == {"n0", "n2"}
    assert {r.at for r in reservations} == {sim.now + 10_000}
    assert "placement group" not in (explain(sim.state, parent, reservations) or "")


def test_when_the_group_frees_the_gang_starts_there_and_a_long_job_goes_elsewhere() -> None:
    sim = _cluster(["a", "a", "b", "b"], [10, 30, 20, 20])
    _reserve(sim)
    sim.now += 20_000
    for launch in list(sim.launched):
        if launch.node in ("n0", "n2", "n3"):
            sim.end(launch, 0)
    long = sim.submit(vcpus=1, timeout_s=600)
    sim.schedule()
    # n2 and n3 are free now: the gang starts there, and the long job goes to n0
    placed = {p.job_id: p.node for p in sim.plans[-1].placements}
    assert placed[long.job_id] == "n0"
    assert {p.node for p in sim.plans[-1].placements if p.gang} == {"n2", "n3"}
