"""API-made LOCAL compute environments: the node each wants, its size, the status it reports."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.ce_capacity import (
    LocalNodeSize,
    Machine,
    ce_status,
    check_local_size,
    connected_vcpus,
    wanted_local_nodes,
)
from hpcbatch.core.model import Resources
from hpcbatch.errors import ConflictError, ValidationError
from tests.core.sim import Sim

MACHINE = Machine(cpus=8, memory_mib=16384)


def _sim(max_vcpus: int | None = 2, **bounds: int) -> Sim:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="local", ce_type="MANAGED", kind="LOCAL")
    sim.do(
        ev.CreateComputeEnvironment,
        name="api",
        ce_type="MANAGED",
        kind="LOCAL",
        max_vcpus=max_vcpus,
        **bounds,
    )
    return sim


def test_an_api_local_ce_wants_one_node_sized_by_max_vcpus() -> None:
    sim = _sim(2)
    assert wanted_local_nodes(sim.state, MACHINE) == {
        "api-1": LocalNodeSize("api-1", "api", 2, 4096)  # 2/8 of the machine's memory
    }


def test_the_embedded_local_ce_and_max_vcpus_0_want_no_node() -> None:
    assert wanted_local_nodes(_sim(0).state, MACHINE) == {}
    assert wanted_local_nodes(_sim(None).state, MACHINE) == {}


def test_more_vcpus_than_the_machine_is_refused_naming_its_size() -> None:
    with pytest.raises(ValidationError) as refused:
        check_local_size(64, Machine(2, 4096), "computeResources.maxvCpus")
    assert refused.value.message.startswith(
        "computeResources.maxvCpus: 64 is more than this machine's 2 CPUs"
    )
    check_local_size(2, Machine(2, 4096), "computeResources.maxvCpus")


def test_status_follows_the_node_creating_valid_invalid() -> None:
    sim = _sim(2)
    ce = sim.state.ces["api"]
    status, reason = ce_status(sim.state, ce)
    assert (status, "starting node api-1" in reason) == ("CREATING", True)
    sim.do(ev.NodeJoined, node="api-1", ce="api", capacity=Resources(2000, 4096))
    assert ce_status(sim.state, ce) == ("VALID", "ComputeEnvironment Healthy")
    assert connected_vcpus(sim.state, "api") == 2
    sim.do(ev.NodeDown, node="api-1", reason="agent gone")
    assert ce_status(sim.state, ce) == ("INVALID", "node api-1 is down: agent gone")
    assert connected_vcpus(sim.state, "api") == 0


def test_update_resizes_and_keeps_what_it_leaves_out() -> None:
    sim = _sim(4, min_vcpus=1, desired_vcpus=3)
    sim.do(ev.UpdateComputeEnvironment, ref="api", max_vcpus=2)
    ce = sim.state.ces["api"]
    assert (ce.min_vcpus, ce.desired_vcpus, ce.max_vcpus) == (1, 2, 2)  # desired follows
    assert wanted_local_nodes(sim.state, MACHINE)["api-1"].vcpus == 2
    sim.do(ev.NodeJoined, node="api-1", ce="api", capacity=Resources(4000, 8192))
    assert ce_status(sim.state, ce)[0] == "UPDATING"


def test_update_below_min_is_refused_and_changes_nothing() -> None:
    sim = _sim(4, min_vcpus=2)
    with pytest.raises(ValidationError, match="at least minvCpus"):
        sim.do(ev.UpdateComputeEnvironment, ref="api", max_vcpus=1, state="DISABLED")
    ce = sim.state.ces["api"]
    assert (ce.max_vcpus, ce.state) == (4, "ENABLED")


def test_bounds_survive_a_restart() -> None:
    sim = _sim(3, min_vcpus=1)
    sim.restart()
    ce = sim.state.ces["api"]
    assert (ce.min_vcpus, ce.max_vcpus) == (1, 3)
    assert wanted_local_nodes(sim.state, MACHINE)["api-1"].vcpus == 3


def test_a_ce_whose_node_name_is_taken_is_refused() -> None:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="other", ce_type="MANAGED", kind="LOCAL")
    sim.do(ev.NodeJoined, node="x-1", ce="other", capacity=Resources(1000, 512))
    with pytest.raises(ConflictError, match="x-1"):
        sim.do(ev.CreateComputeEnvironment, name="x", ce_type="MANAGED", kind="LOCAL", max_vcpus=1)
    assert "x" not in sim.state.ces


def test_delete_with_running_jobs_is_deleting_until_they_end() -> None:
    sim = Sim().cluster(nodes=1, ce="busy", queue="q")
    job = sim.submit()
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.do(ev.CreateComputeEnvironment, name="other", ce_type="MANAGED", kind="LOCAL")
    # AWS deletes only a CE no queue uses; its running jobs are another matter
    sim.do(ev.UpdateJobQueue, ref="q", ce_order=((1, "other"),))
    sim.do(ev.UpdateComputeEnvironment, ref="busy", state="DISABLED")
    sim.do(ev.DeleteComputeEnvironment, ref="busy")
    ce = sim.state.ces["busy"]
    assert ce_status(sim.state, ce) == (
        "DELETING",
        "waiting for 1 running job(s) on its nodes to end",
    )
    node = sim.state.nodes["busy-n0"]
    assert (node.state.value, node.retiring) == (
        "DRAINING",
        "its compute environment is being deleted",
    )
    with pytest.raises(ConflictError, match="DELETING"):
        sim.do(ev.UpdateComputeEnvironment, ref="busy", state="ENABLED")
    sim.do(ev.Tick)
    assert "busy" in sim.state.ces  # its job still runs
    sim.end(launch)
    sim.do(ev.Tick)
    assert "busy" not in sim.state.ces and "busy-n0" not in sim.state.nodes
    assert sim.state.jobs[job.job_id].status.value == "SUCCEEDED"


def test_an_unmanaged_ce_says_whether_it_has_hosts_and_whether_they_are_up() -> None:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="own", ce_type="UNMANAGED", kind="SSH")
    ce = sim.state.ces["own"]
    assert ce_status(sim.state, ce) == (
        "VALID",
        "no hosts yet: an admin adds them with `hpcbatch nodes add --ce own`",
    )
    sim.do(ev.NodeLost, node="h1", ce="own", reason="connection refused")
    assert ce_status(sim.state, ce) == ("INVALID", "every host is down (h1: connection refused)")
    sim.do(ev.NodeJoined, node="h1", ce="own", capacity=Resources(2000, 4096))
    assert ce_status(sim.state, ce) == ("VALID", "ComputeEnvironment Healthy")
