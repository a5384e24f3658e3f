"""A node's GPU inventory in the core: a board that falls off the bus goes out of service alone,
one UUID is never offered by two nodes, and who holds which GPU survives a head restart."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.model import JobSpec, JobStatus, NodeRange, Resources
from tests.core.sim import Sim, node_gpus

NODE = "local-n0"
A, B = "GPU-local-n0-0", "GPU-local-n0-1"


def _look(sim: Sim, gpus: tuple[str, ...], reason: str | None = None) -> None:
    listed = tuple(g for g in node_gpus(NODE, 2) if g.id in gpus)
    sim.do(ev.NodeGpusChanged, node=NODE, gpus=listed, reason=reason)


def test_a_gpu_missing_from_a_later_look_goes_out_of_service_alone_with_a_reason() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=2)
    _look(sim, (B,))
    node = sim.state.nodes[NODE]
    assert node.gpus_out == {A: f"{A} (index 0) is no longer listed by nvidia-smi on {NODE}"}
    assert node.free_gpus == {B} and node.capacity.gpus == 2
    one, two = sim.submit(gpus=1), sim.submit(gpus=2)
    (launch,) = sim.schedule()
    assert launch.job_id == one.job_id and launch.gpus == (B,)
    # the two-GPU job waits for the board: it is not a misconfiguration of the job
    assert two.status is JobStatus.RUNNABLE
    assert not (explain(sim.state, two) or "").startswith("MISCONFIGURATION")
    journal = [line.detail for line in sim.state.changes.journal if line.subject == NODE]
    assert node.gpus_out[A] in journal
    _look(sim, (A, B))  # listed again: back in service
    assert node.gpus_out == {} and node.free_gpus == {A}


def test_a_held_gpu_that_disappears_stays_held_until_its_job_ends_and_is_not_freed() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=2)
    sim.submit(gpus=1)
    (launch,) = sim.schedule()
    sim.start(launch)
    held = launch.gpus[0]
    _look(sim, tuple(g for g in (A, B) if g != held))
    node = sim.state.nodes[NODE]
    assert held in node.gpus_out and node.allocated.gpus == 1
    sim.end(launch, 1)
    assert held not in node.free_gpus and node.allocated.gpus == 0
    follower = sim.submit(gpus=1)
    (again,) = sim.schedule()
    assert again.job_id == follower.job_id and again.gpus != (held,)


def test_a_failed_nvidia_smi_keeps_the_gpus_and_shows_its_reason() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=2)
    _look(sim, (A, B), reason="nvidia-smi timed out after 5 s (killed)")
    node = sim.state.nodes[NODE]
    assert node.gpus_reason == "nvidia-smi timed out after 5 s (killed)"
    assert node.free_gpus == {A, B} and node.gpus_out == {}


def test_one_uuid_offered_by_two_nodes_serves_only_the_first() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=2)
    twin = node_gpus(NODE, 2)  # a second name for the same machine
    sim.do(ev.NodeJoined, node="twin", ce="local", capacity=Resources(8000, 8192, 2), gpus=twin)
    other = sim.state.nodes["twin"]
    assert other.free_gpus == set()
    assert other.gpus_out[A] == (
        f"{A} (index 0) is also offered by node {NODE}: one GPU can be offered by one node only"
    )
    for _ in range(3):
        sim.submit(gpus=1)
    launches = sim.schedule()  # two GPUs in all: the twin's copies serve nobody
    assert sorted(launch.node for launch in launches) == [NODE, NODE]


def test_a_hello_without_a_held_gpu_keeps_it_out_of_service_until_the_attempt_ends() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=2)
    sim.submit(gpus=2)
    (launch,) = sim.schedule()
    sim.start(launch)
    node = sim.state.nodes[NODE]
    sim.do(
        ev.NodeJoined,
        node=NODE,
        ce="local",
        capacity=node.capacity,
        gpus=node_gpus(NODE, 1),  # the agent restarted with a config that keeps only GPU 0
        known_attempts=(launch.attempt_id,),
    )
    assert node.gpus_out == {B: f"{B} (index 1) is no longer offered by {NODE}'s agent"}
    assert node.capacity.gpus == 2
    sim.end(launch, 0)
    assert [g.id for g in node.gpus] == [A] and node.capacity.gpus == 1
    assert node.free_gpus == {A} and node.gpus_out == {}


def test_the_inventory_and_who_holds_which_gpu_survive_a_head_restart() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=2)
    sim.submit(gpus=1)
    (launch,) = sim.schedule()
    sim.start(launch)
    held = launch.gpus[0]
    free = ({A, B} - {held}).pop()
    _look(sim, (held,), reason="nvidia-smi: one board missing")
    sim.restart()
    node = sim.state.nodes[NODE]
    assert node.gpus == node_gpus(NODE, 2)
    assert free in node.gpus_out and node.free_gpus == set()
    assert node.gpus_reason == "nvidia-smi: one board missing"
    sim.submit(gpus=1)
    assert sim.schedule() == []  # the held one is held, the other is out of service
    sim.end(launch, 0)
    assert node.free_gpus == {held}


def test_every_node_of_a_gang_gets_its_ranges_gpus_and_too_many_is_a_misconfiguration() -> None:
    sim = Sim().cluster(nodes=3, vcpus=4, gpus=2)
    main = JobSpec(command=("mpirun", "app"), resources=Resources(1000, 512, 0))
    workers = JobSpec(command=("sleep", "1"), resources=Resources(1000, 512, 2))
    sim.gang_definition(nodes=3, ranges=(NodeRange(0, 0, main), NodeRange(1, 2, workers, True)))
    parent = sim.submit_gang()
    launches = sim.schedule()
    assert parent.status is JobStatus.STARTING
    by_node = {launch.node: launch for launch in launches}
    for name, launch in by_node.items():  # a gang node holds its whole node, GPUs included
        assert set(launch.gpus) == {f"GPU-{name}-0", f"GPU-{name}-1"}
        assert dict(launch.environment)["CUDA_VISIBLE_DEVICES"] == ",".join(launch.gpus)
    greedy = JobSpec(command=("x",), resources=Resources(1000, 512, 3))
    sim.gang_definition(name="greedy", nodes=2, ranges=(NodeRange(0, 1, greedy, True),))
    too_many = sim.submit_gang(definition="greedy")
    reason = explain(sim.state, too_many) or ""
    assert reason.startswith("MISCONFIGURATION") and "needs 3 GPUs" in reason, reason
    assert "the largest node in compute environments [local] has 2" in reason, reason
    single = sim.submit(gpus=3)
    assert "needs 3 GPUs; the largest node in compute environments [local] has 2" in (
        explain(sim.state, single) or ""
    )


def test_a_gang_still_takes_a_node_with_a_gpu_out_of_service_and_gets_the_others() -> None:
    sim = Sim().cluster(nodes=2, vcpus=4, gpus=2)
    _look(sim, (B,))  # local-n0 lost GPU 0
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang()
    sim.schedule()
    assert parent.status is JobStatus.STARTING
    held = {a.node: a.gpus for a in (sim.node(parent, i).attempts[-1] for i in range(2))}
    assert held == {NODE: (B,), "local-n1": ("GPU-local-n1-0", "GPU-local-n1-1")}
