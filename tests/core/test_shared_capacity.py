"""Limits nodes share: the head's machine under every LOCAL node, an SSH CE's maxvCpus over its
hosts. Placement never passes them, a job waiting on one says which, a restart keeps them."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import JobSpec, JobStatus, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.shared_capacity import rooms
from hpcbatch.metrics.snapshot import classify
from tests.core.sim import Sim

MACHINE = Resources(8000, 16384)  # an 8-CPU, 16 GiB machine


def _two_local_ces(vcpus: int = 8, memory: int = 16384, machine: Resources = MACHINE) -> Sim:
    """Two API-made LOCAL CEs "a" and "b", each node ``vcpus`` on the same machine; queues qa,
    qb."""
    sim = Sim()
    for ce in ("a", "b"):
        sim.do(
            ev.CreateComputeEnvironment, name=ce, ce_type="MANAGED", kind="LOCAL", max_vcpus=vcpus
        )
        sim.do(
            ev.NodeJoined,
            node=f"{ce}-1",
            ce=ce,
            capacity=Resources(vcpus * 1000, memory),
            machine="head",
            machine_capacity=machine,
        )
        sim.do(ev.CreateJobQueue, name=f"q{ce}", priority=1, ce_order=((1, ce),))
    sim.do(ev.RegisterJobDefinition, name="d", def_type="container", spec=JobSpec(("true",)))
    return sim


def _held_cpu(sim: Sim) -> int:
    return sum(n.allocated.cpu_milli for n in sim.state.nodes.values())


def test_two_local_ces_of_the_machines_size_run_no_more_than_the_machine_at_once() -> None:
    sim = _two_local_ces()
    jobs = [sim.submit(queue=q, vcpus=1) for q in ("qa", "qb") for _ in range(8)]
    placed = sim.schedule()
    assert len(placed) == 8 and _held_cpu(sim) == 8000  # not 16: the machine has 8 CPUs
    waiting = [j for j in jobs if j.status is JobStatus.RUNNABLE]
    assert len(waiting) == 8
    reason = explain(sim.state, waiting[0])
    assert reason is not None and reason.startswith("waiting for the machine: the jobs on its ")
    assert "(a-1, b-1) hold 8 of its 8 CPUs" in reason
    assert classify(reason) == "capacity"  # hpcbatch_jobs_waiting{reason="capacity"}
    # each CE still honours its own size: one job ends, one more starts, wherever it fits
    sim.start(placed[0])
    sim.end(placed[0])
    assert len(sim.schedule()) == 1 and _held_cpu(sim) == 8000


def test_memory_is_shared_too() -> None:
    sim = _two_local_ces(vcpus=4)
    sim.submit(queue="qa", vcpus=1, memory=10_000)
    sim.submit(queue="qb", vcpus=1, memory=10_000)
    assert len(sim.schedule()) == 1  # 20,000 MiB would pass the machine's 16,384


def test_a_node_outside_the_machine_is_not_limited_by_it() -> None:
    sim = _two_local_ces().cluster(nodes=1, vcpus=8, ce="ssh", queue="qs")
    for _ in range(8):
        sim.submit(queue="qs", vcpus=1)
    assert len(sim.schedule()) == 8


def test_the_plan_is_checked_again_when_applied() -> None:
    sim = _two_local_ces()
    for _ in range(8):
        sim.submit(queue="qa", vcpus=1)
    stale = schedule(sim.state, sim.now)  # planned before b's jobs took the machine
    for _ in range(8):
        sim.submit(queue="qb", vcpus=1)
    assert len(sim.schedule()) == 8
    before = len(sim.launched)
    sim.do(ev.PlanApplied, plan=stale)
    assert len(sim.launched) == before  # the stale placements find no room: none starts


def test_the_machine_survives_a_restart() -> None:
    sim = _two_local_ces()
    for _ in range(9):
        sim.submit(queue="qa", vcpus=1)
    sim.schedule()
    sim.restart()
    assert sim.state.nodes["a-1"].machine == "head"
    assert sim.state.nodes["b-1"].machine_capacity == MACHINE
    assert rooms(sim.state)[("machine", "head")].cpu_milli == 0
    sim.submit(queue="qb", vcpus=1)
    assert sim.schedule() == []


def test_an_ssh_ce_never_holds_more_than_its_max_vcpus() -> None:
    """A pool host of unknown size connected past maxvCpus: the CE's jobs stay within it."""
    sim = Sim()
    sim.do(
        ev.CreateComputeEnvironment,
        name="ce",
        ce_type="MANAGED",
        kind="SSH",
        max_vcpus=4,
        echo={"computeResources": {"type": "SSH", "instanceTypes": ["gpu"]}},
    )
    sim.do(ev.NodeJoined, node="big", ce="ce", capacity=Resources(16_000, 65536))
    sim.cluster(nodes=0, ce="ce")
    jobs = [sim.submit(vcpus=1) for _ in range(6)]
    assert len(sim.schedule()) == 4
    reason = explain(sim.state, jobs[-1])
    assert reason == (
        "waiting for compute environment ce's maxvCpus: its jobs hold 4 of its 4 vCPUs; "
        "needs 1 vCPU, 512 MiB"
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(st.sampled_from(("qa", "qb")), st.integers(1, 8)), min_size=1, max_size=30)
)
def test_any_workload_never_holds_more_than_the_machine(jobs: list[tuple[str, int]]) -> None:
    sim = _two_local_ces()
    for queue, vcpus in jobs:
        sim.submit(queue=queue, vcpus=vcpus)
    running = []
    for _ in range(2 * len(jobs) + 1):
        running += sim.schedule()
        assert _held_cpu(sim) <= MACHINE.cpu_milli  # check_invariants says so too
        if not running:
            break
        sim.now += 1000
        done = running.pop(0)  # one ends at a time: the rest keep holding the machine
        sim.start(done)
        sim.end(done)
    assert all(j.status is JobStatus.SUCCEEDED for j in sim.state.jobs.values())


def test_a_gang_on_nodes_of_one_machine_takes_them_only_if_the_machine_has_room() -> None:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="local", ce_type="MANAGED", kind="LOCAL")
    for i in range(2):  # two virtual nodes of 4 vCPUs on a 4-CPU machine
        sim.do(
            ev.NodeJoined,
            node=f"local-{i + 1}",
            ce="local",
            capacity=Resources(4000, 8192),
            machine="head",
            machine_capacity=Resources(4000, 16384),
        )
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "local"),))
    sim.gang_definition(nodes=2)
    gang = sim.submit_gang()
    assert sim.schedule() == []  # two whole nodes hold 8 vCPUs: the machine has 4
    assert gang.status is JobStatus.RUNNABLE
