"""A gang is placed inside one placement group when one can hold it, else across its CE, and
the choice is told in the job's story."""

from __future__ import annotations

from hpcbatch.core.model import Job
from tests.core.sim import Sim


def _cluster(groups: list[str | None]) -> Sim:
    return Sim().grouped_cluster(groups)


def _story(sim: Sim, job: Job) -> list[str]:
    return [line.detail for line in sim.state.changes.journal if line.subject == job.job_id]


def _placed(sim: Sim) -> set[str]:
    return {p.node for p in sim.plans[-1].placements}


def test_a_gang_is_placed_inside_the_group_with_the_most_free_nodes() -> None:
    # n0 sorts first and belongs to the small group: across the CE it would be taken
    sim = _cluster(["a", "a", "b", "b", "b", None])
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang()
    sim.schedule()
    assert _placed(sim) == {"n2", "n3"}
    assert any("placed in placement group b" in line for line in _story(sim, parent))


def test_a_smaller_group_holds_the_gang_when_the_biggest_is_busy() -> None:
    sim = _cluster(["a", "a", "b", "b", "b"])
    sim.gang_definition(name="big", nodes=3)
    sim.gang_definition(name="pair", nodes=2)
    sim.submit_gang(definition="big")
    sim.schedule()
    assert _placed(sim) == {"n2", "n3", "n4"}
    pair = sim.submit_gang(definition="pair")
    sim.schedule()
    assert _placed(sim) == {"n0", "n1"}
    assert any("placed in placement group a" in line for line in _story(sim, pair))


def test_no_group_can_hold_it_so_it_is_placed_across_the_ce_and_says_so() -> None:
    sim = _cluster(["a", "a", "b", "b"])
    sim.gang_definition(nodes=4)
    parent = sim.submit_gang()
    sim.schedule()
    assert _placed(sim) == {"n0", "n1", "n2", "n3"}
    story = _story(sim, parent)
    assert any("no placement group could hold 4 nodes: placed across the CE" in s for s in story)


def test_a_ce_without_groups_tells_nothing_of_them() -> None:
    sim = _cluster([None, None])
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang()
    sim.schedule()
    assert len(_placed(sim)) == 2
    assert not any("placement group" in line for line in _story(sim, parent))
