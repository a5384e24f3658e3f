"""A multi-node job on a SLURM compute environment (core/slurm_gang.py): every node goes to the
one bridge at once, each holding its own needs under the CE's cap, with no start barrier and no
addresses from the head; the gang's life (main node decides, the others are stopped, retries)
is the same as anywhere."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import JobStatus, Resources
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim, retry


def _slurm(cap_vcpus: int = 8, gpus: int = 0) -> Sim:
    """CE "hpc" of kind SLURM, its one node the bridge (8 vCPUs: its maxvCpus cap)."""
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="hpc", ce_type="MANAGED", kind="SLURM")
    sim.cluster(nodes=1, vcpus=cap_vcpus, memory=64_000, gpus=gpus, ce="hpc")
    return sim


def test_all_nodes_go_to_the_bridge_at_once_each_holding_its_own_needs() -> None:
    sim = _slurm()
    sim.gang_definition(nodes=4, vcpus=2, memory=1000)
    parent = sim.submit_gang()
    launches = sim.schedule()
    assert sorted(la.attempt_id for la in launches) == [
        f"{parent.job_id}#{i}/1" for i in range(4)
    ]  # the main node too: no start barrier, Slurm starts them together
    bridge = sim.state.nodes["hpc-n0"]
    assert {la.node for la in launches} == {"hpc-n0"}
    assert bridge.allocated == Resources(8000, 4000)  # 4 x (2 vCPUs, 1000 MiB), not 4 x whole
    assert all(la.cpu_milli == 2000 and la.memory_mib == 1000 for la in launches)
    env = dict(launches[0].environment)
    assert env["AWS_BATCH_JOB_NUM_NODES"] == "4" and env["AWS_BATCH_JOB_NODE_INDEX"] == "0"
    for slurms_to_know in ("HPCBATCH_HOSTS", "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"):
        assert slurms_to_know not in env  # the bridge's batch script sets them
    assert "as one Slurm job of 4 nodes via hpc-n0" in (parent.start_reason or "")


def test_a_gang_waits_for_room_under_the_cap_and_a_too_big_one_is_misconfigured() -> None:
    sim = _slurm(cap_vcpus=8)
    sim.gang_definition(nodes=4, vcpus=2)
    busy = sim.submit(vcpus=2, timeout_s=60)
    (single,) = sim.schedule()
    parent = sim.submit_gang()
    later = sim.submit(vcpus=2)  # no timeout: it would hold the cap the gang waits for
    assert sim.schedule() == []  # 8 vCPUs wanted, 6 free; the later job must not backfill
    assert sim.state.jobs[later.job_id].status is JobStatus.RUNNABLE
    reason = explain(sim.state, parent, schedule(sim.state, sim.now).reservations)
    assert "waiting for room in Slurm for its 4 nodes: needs 8 vCPUs" in reason
    assert "6 vCPUs" in reason and "free on hpc-n0" in reason
    assert "; reserved from " in reason and "smaller jobs backfill around it" in reason
    sim.start(single)
    sim.end(single)
    assert sim.state.jobs[busy.job_id].status is JobStatus.SUCCEEDED
    assert len(sim.schedule()) == 4

    sim.gang_definition(name="huge", nodes=5, vcpus=2)
    huge = sim.submit_gang(definition="huge")
    reason = explain(sim.state, huge, schedule(sim.state, sim.now).reservations)
    assert reason.startswith("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 10 vCPUs")
    assert "allow at most 8 vCPUs" in reason


def test_the_main_node_exiting_stops_the_others_and_decides_the_job() -> None:
    sim = _slurm()
    sim.gang_definition(nodes=3, vcpus=1)
    parent = sim.submit_gang()
    launches = sorted(sim.schedule(), key=lambda la: la.attempt_id)
    for launch in launches:
        sim.start(launch)
    assert parent.status is JobStatus.RUNNING
    sim.end(launches[0], exit_code=0)  # the main node (0)
    stopped = sorted(k.attempt_id for k in sim.killed)
    assert stopped == [launches[1].attempt_id, launches[2].attempt_id]
    for launch in launches[1:]:
        sim.end(launch, exit_code=None, reason=sim.killed[0].reason)
    assert parent.status is JobStatus.SUCCEEDED
    assert [sim.node(parent, i).status for i in range(3)] == [JobStatus.SUCCEEDED] * 3
    assert sim.state.nodes["hpc-n0"].allocated == Resources()


def test_a_node_lost_in_slurm_retries_the_whole_gang_there() -> None:
    sim = _slurm()
    sim.gang_definition(nodes=2, vcpus=1)
    parent = sim.submit_gang(retry=retry(2))
    first = sorted(sim.schedule(), key=lambda la: la.attempt_id)
    for launch in first:
        sim.start(launch)
    lost = "Host lost: Slurm node c2 failed (NODE_FAIL)"
    for launch in first:
        sim.end(launch, exit_code=None, reason=lost)
    assert parent.status is JobStatus.RUNNABLE
    second = sorted(sim.schedule(), key=lambda la: la.attempt_id)
    assert [la.attempt_id for la in second] == [f"{parent.job_id}#{i}/2" for i in range(2)]


def test_gpus_per_node_come_from_the_bridges_count() -> None:
    sim = _slurm(gpus=4)
    sim.gang_definition(nodes=2, vcpus=1, gpus=2)
    sim.submit_gang()
    launches = sim.schedule()
    held = [gpu for launch in launches for gpu in launch.gpus]
    assert len(held) == 4 and len(set(held)) == 4
    assert all(len(launch.gpus) == 2 for launch in launches)
