"""Agent input the core must shrug off: reports for another node's attempts, and ids that name
nothing. Each leaves every job and allocation as it was, and never raises (a raise in ``step``
stops the head, and the same hello would stop it again after every restart)."""

from __future__ import annotations

import copy

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.model import JobStatus, parse_attempt_id
from tests.core.sim import Sim

MALFORMED = [
    "garbage",
    "x/notanumber",
    "",
    "/1",
    "job/0",
    "job/-1",
    "job/ 1",
    "job/+1",
    "job/1_0",
    "job/\u0661",  # an Arabic-Indic one: int() takes it
    "../../etc/passwd/1",
    "job\x00/1",
    "nosuchjob/1",  # well formed, but of a job the head never had
]


def _running_on_two_nodes() -> tuple[Sim, LaunchAttempt, LaunchAttempt]:
    sim = Sim().cluster(nodes=2, vcpus=1)
    sim.submit()
    sim.submit()
    first, second = sim.schedule()
    assert first.node != second.node
    sim.start(first)
    sim.start(second)
    return sim, first, second


def _snapshot(sim: Sim) -> tuple[object, object]:
    jobs = {j.job_id: (j.status, copy.deepcopy(j.attempts)) for j in sim.state.jobs.values()}
    nodes = {
        n.name: (n.allocated, set(n.attempts), set(n.free_gpus)) for n in sim.state.nodes.values()
    }
    return jobs, nodes


def test_a_node_cannot_end_an_attempt_running_on_another_node() -> None:
    sim, on_a, on_b = _running_on_two_nodes()
    before = _snapshot(sim)
    sim.do(
        ev.AttemptEnded,
        node=on_a.node,
        attempt_id=on_b.attempt_id,
        stopped_at=sim.now,
        exit_code=1,
        reason="forged",
    )
    assert _snapshot(sim) == before
    job = sim.state.jobs[on_b.job_id]
    assert job.status is JobStatus.RUNNING and job.attempts[-1].node == on_b.node
    assert on_b.attempt_id in sim.state.nodes[on_b.node].attempts
    sim.end(on_b, 0)  # its own node's report still counts
    assert job.status is JobStatus.SUCCEEDED


def test_a_node_cannot_start_an_attempt_placed_on_another_node() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    sim.submit()
    sim.submit()
    on_a, on_b = sim.schedule()
    before = _snapshot(sim)
    sim.do(ev.AttemptStarted, node=on_a.node, attempt_id=on_b.attempt_id, started_at=1, pid=7)
    assert _snapshot(sim) == before
    assert sim.state.jobs[on_b.job_id].status is JobStatus.STARTING


def test_a_hello_naming_another_nodes_attempt_changes_nothing() -> None:
    sim, on_a, on_b = _running_on_two_nodes()
    before = _snapshot(sim)
    node_a = sim.state.nodes[on_a.node]
    commands = sim.do(
        ev.NodeJoined,
        node=on_a.node,
        ce="local",
        capacity=node_a.capacity,
        known_attempts=(on_a.attempt_id, on_b.attempt_id),
        running_attempts=(on_a.attempt_id,),
    )
    assert commands == []
    assert _snapshot(sim) == before


@pytest.mark.parametrize("aid", MALFORMED)
def test_an_id_that_names_nothing_changes_nothing(aid: str) -> None:
    sim, on_a, _ = _running_on_two_nodes()
    before = _snapshot(sim)
    node_a = sim.state.nodes[on_a.node]
    sim.do(ev.AttemptStarted, node=on_a.node, attempt_id=aid, started_at=1, pid=7)
    sim.do(ev.AttemptEnded, node=on_a.node, attempt_id=aid, stopped_at=1, exit_code=1)
    commands = sim.do(
        ev.NodeJoined,
        node=on_a.node,
        ce="local",
        capacity=node_a.capacity,
        known_attempts=(on_a.attempt_id, aid),
        running_attempts=(on_a.attempt_id, aid),
    )
    # A well-formed id the node does not hold is "superseded" and killed on that node alone.
    assert [c.attempt_id for c in commands] == ([aid] if parse_attempt_id(aid) else [])
    assert all(c.node == on_a.node for c in commands)
    assert _snapshot(sim) == before


def test_parse_attempt_id_takes_only_the_ids_the_head_makes() -> None:
    assert parse_attempt_id("5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11/3") == (
        "5a2c9a5e-0f1e-4c4b-9a59-0d8a4b0c8f11",
        3,
    )
    assert parse_attempt_id("p:17/1") == ("p:17", 1)
    assert [a for a in MALFORMED if parse_attempt_id(a) is not None] == ["nosuchjob/1"]
    assert parse_attempt_id(None) is None and parse_attempt_id(12) is None


def test_a_lost_node_ends_only_its_own_attempts() -> None:
    sim, on_a, on_b = _running_on_two_nodes()
    sim.do(ev.NodeLost, node=on_a.node, reason="gone")
    assert sim.state.jobs[on_a.job_id].status is JobStatus.FAILED
    assert sim.state.jobs[on_b.job_id].status is JobStatus.RUNNING
    check_invariants(sim.state)
