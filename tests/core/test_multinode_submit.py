"""Submitting a multi-node job: its parent, its node jobs, and every rule a submit must keep."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import JobSpec, JobStatus, NodeRange, Resources
from hpcbatch.errors import ValidationError
from tests.core.sim import Sim


def _two_ranges(sim: Sim, nodes: int = 4, open_end: bool = True) -> None:
    main = JobSpec(command=("mpirun", "Ref::app"), resources=Resources(2000, 1024, 0))
    worker = JobSpec(command=("sleep", "Ref::app"), resources=Resources(1000, 512, 0))
    ranges = (NodeRange(0, 0, main), NodeRange(1, nodes - 1, worker, open_end))
    sim.gang_definition(nodes=nodes, ranges=ranges)


def test_a_multinode_submit_makes_a_parent_and_one_node_job_per_node() -> None:
    sim = Sim().cluster(nodes=4)
    _two_ranges(sim)
    parent = sim.submit_gang(parameters={"app": "a.py"}, timeout_s=60, priority=5)
    assert parent.status is JobStatus.RUNNABLE and parent.multinode is not None
    assert parent.multinode.num_nodes == 4
    nodes = [sim.node(parent, i) for i in range(4)]
    assert [n.job_id for n in nodes] == [f"{parent.job_id}#{i}" for i in range(4)]
    assert all(n.status is JobStatus.PENDING and n.parent_id == parent.job_id for n in nodes)
    assert [n.node_index for n in nodes] == [0, 1, 2, 3]
    assert nodes[0].spec.command == ("mpirun", "a.py")
    assert nodes[3].spec.command == ("sleep", "a.py")
    assert nodes[0].spec.resources == Resources(2000, 1024, 0)
    assert {(n.spec.timeout_s, n.spec.priority) for n in nodes} == {(60, 5)}
    assert "placed together" in (explain(sim.state, nodes[1]) or "")


def test_an_array_multinode_job_is_refused() -> None:
    sim = Sim().cluster()
    sim.gang_definition()
    with pytest.raises(ValidationError, match="arrayProperties"):
        sim.submit_gang(array_size=2)


def test_node_overrides_on_a_container_definition_are_refused() -> None:
    sim = Sim().cluster()
    with pytest.raises(ValidationError, match="nodeOverrides"):
        sim.submit(node_overrides=ev.NodeOverrides(num_nodes=2))


@pytest.mark.parametrize("field", ["command", "cpu_milli", "memory_mib", "gpus"])
def test_container_overrides_of_command_or_resources_are_refused(field: str) -> None:
    sim = Sim().cluster()
    sim.gang_definition()
    value = ("x",) if field == "command" else 1
    with pytest.raises(ValidationError, match="containerOverrides.*nodeOverrides"):
        sim.submit_gang(**{field: value})
    assert not sim.state.jobs


def test_num_nodes_override_stretches_an_open_range() -> None:
    sim = Sim().cluster(nodes=8)
    _two_ranges(sim, nodes=4)
    parent = sim.submit_gang(node_overrides=ev.NodeOverrides(num_nodes=6))
    assert parent.multinode is not None and parent.multinode.num_nodes == 6
    assert sim.node(parent, 5).spec.command[0] == "sleep"
    smaller = sim.submit_gang(node_overrides=ev.NodeOverrides(num_nodes=2))
    assert len([j for j in sim.state.jobs.values() if j.parent_id == smaller.job_id]) == 2


def test_a_closed_range_past_the_new_count_is_refused_naming_it() -> None:
    sim = Sim().cluster(nodes=8)
    _two_ranges(sim, nodes=4, open_end=False)
    with pytest.raises(ValidationError, match=r"nodeRangeProperties\[1\].targetNodes"):
        sim.submit_gang(node_overrides=ev.NodeOverrides(num_nodes=3))
    with pytest.raises(ValidationError, match="nodeOverrides.numNodes.*no node range"):
        sim.submit_gang(node_overrides=ev.NodeOverrides(num_nodes=6))


@pytest.mark.parametrize("count", [0, 1001])
def test_num_nodes_is_1_to_1000(count: int) -> None:
    sim = Sim().cluster()
    sim.gang_definition()
    with pytest.raises(ValidationError, match="nodeOverrides.numNodes.*1..1000"):
        sim.submit_gang(node_overrides=ev.NodeOverrides(num_nodes=count))


def test_main_node_must_stay_below_the_node_count() -> None:
    sim = Sim().cluster()
    sim.gang_definition(main_node=3)
    with pytest.raises(ValidationError, match="mainNode"):
        sim.submit_gang(node_overrides=ev.NodeOverrides(num_nodes=2))


def test_range_overrides_apply_to_their_nodes_only() -> None:
    sim = Sim().cluster(nodes=4)
    sim.gang_definition()
    override = ev.NodeRangeOverride(
        1, None, command=("worker",), environment=(("ROLE", "w"),), cpu_milli=2000
    )
    parent = sim.submit_gang(node_overrides=ev.NodeOverrides(ranges=(override,)))
    assert sim.node(parent, 0).spec.command == ("mpirun", "app")
    assert sim.node(parent, 2).spec.command == ("worker",)
    assert dict(sim.node(parent, 3).spec.environment) == {"ROLE": "w"}
    assert sim.node(parent, 1).spec.resources.cpu_milli == 2000
    assert parent.multinode is not None
    assert [(r.first, r.last) for r in parent.multinode.ranges] == [(0, 0), (1, 3)]


def test_an_override_range_outside_the_job_is_refused_naming_it() -> None:
    sim = Sim().cluster()
    sim.gang_definition()
    bad = ev.NodeRangeOverride(2, 9, command=("x",))
    with pytest.raises(ValidationError, match=r"nodePropertyOverrides\[0\].targetNodes"):
        sim.submit_gang(node_overrides=ev.NodeOverrides(ranges=(bad,)))


def test_a_nul_in_any_node_s_process_text_is_refused() -> None:
    sim = Sim().cluster()
    sim.gang_definition()
    bad = ev.NodeRangeOverride(3, 3, command=("a\x00b",))
    with pytest.raises(ValidationError, match="NUL"):
        sim.submit_gang(node_overrides=ev.NodeOverrides(ranges=(bad,)))
    assert not sim.state.jobs


def test_more_nodes_than_any_compute_environment_is_a_misconfiguration() -> None:
    sim = Sim().cluster(nodes=3)
    sim.gang_definition(nodes=4)
    parent = sim.submit_gang()
    reason = explain(sim.state, parent) or ""
    assert reason.startswith("MISCONFIGURATION") and "needs 4 nodes" in reason, reason
    assert "has 3" in reason
    assert sim.schedule() == []
    with pytest.raises(ValidationError, match="nodeProperties.*MISCONFIGURATION"):
        sim.submit_gang(strict=True)


def test_a_node_larger_than_every_node_is_a_misconfiguration() -> None:
    sim = Sim().cluster(nodes=4, vcpus=4)
    sim.gang_definition(vcpus=8)
    reason = explain(sim.state, sim.submit_gang()) or ""
    assert reason.startswith("MISCONFIGURATION") and "node 0:3" in reason, reason
    assert "8 vCPUs" in reason
