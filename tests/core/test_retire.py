"""Retiring nodes through the pure core: drained for good, removed once empty, never a lost job."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobStatus, NodeState
from hpcbatch.errors import ConflictError
from tests.core.sim import Sim

WHY = "removed from the head's config"


def test_a_retiring_node_finishes_its_job_takes_no_new_one_and_is_then_removed() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    job = sim.submit()
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.RetireNode, node=launch.node, reason=WHY)
    node = sim.state.nodes[launch.node]
    assert (node.state, node.state_reason, node.retiring) == (NodeState.DRAINING, WHY, WHY)

    later = sim.submit()
    (placed,) = sim.schedule()
    assert placed.job_id == later.job_id and placed.node != launch.node
    with pytest.raises(ConflictError, match="still holds attempts"):
        sim.do(ev.RemoveNode, node=launch.node, reason=WHY)
    with pytest.raises(ConflictError, match="retiring"):
        sim.do(ev.ResumeNode, node=launch.node)

    sim.end(launch, 0)
    assert job.status is JobStatus.SUCCEEDED and len(job.attempts) == 1
    assert node.state is NodeState.DRAINED
    sim.state.changes.journal.clear()
    sim.do(ev.RemoveNode, node=launch.node, reason=WHY)
    assert launch.node not in sim.state.nodes
    assert sim.state.changes.deleted["node"] == {launch.node}
    (line,) = sim.state.changes.journal
    assert (line.subject, line.event, line.detail) == (launch.node, "REMOVED", f"from local: {WHY}")
    assert line.cause.startswith("c")  # the removing event's cause
    sim.do(ev.RemoveNode, node=launch.node, reason=WHY)  # twice: harmless


def test_an_empty_retiring_node_is_drained_at_once() -> None:
    sim = Sim().cluster(nodes=1)
    sim.do(ev.RetireNode, node="local-n0", reason=WHY)
    assert sim.state.nodes["local-n0"].state is NodeState.DRAINED
    sim.do(ev.RetireNode, node="ghost", reason=WHY)  # never joined: nothing to drain
    assert "ghost" not in sim.state.nodes


def test_a_down_retiring_node_keeps_the_usual_rules_and_drains_when_it_returns() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    job = sim.submit()
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.NodeDown, node=launch.node, reason="silent")
    sim.do(ev.RetireNode, node=launch.node, reason=WHY)
    node = sim.state.nodes[launch.node]
    assert node.state is NodeState.DOWN and job.status is JobStatus.RUNNING
    sim.rejoin(launch)
    assert (node.state, node.state_reason) == (NodeState.DRAINING, WHY)
    sim.end(launch, 0)
    assert job.status is JobStatus.SUCCEEDED and node.state is NodeState.DRAINED


def test_retiring_survives_a_restart_and_a_node_kept_after_all_is_online_again() -> None:
    sim = Sim().cluster(nodes=1)
    sim.submit()
    (launch,) = sim.schedule()
    sim.do(ev.RetireNode, node=launch.node, reason=WHY)
    sim.restart()
    node = sim.state.nodes[launch.node]
    assert (node.state, node.retiring) == (NodeState.DRAINING, WHY)
    sim.do(ev.KeepNode, node=launch.node, reason="listed in the head's config again")
    assert (node.state, node.retiring) == (NodeState.ONLINE, None)
    sim.submit()
    assert len(sim.schedule()) == 1
