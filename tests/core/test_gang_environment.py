"""What every node of a gang is told: its allocation (HPCBATCH_HOSTS), its peers' launch
ports (HPCBATCH_LAUNCH_PEERS), the main node, its CE's fabric; and what a node carries from
its hello (launch port, placement group, fabric) through the store."""

from __future__ import annotations

import json

from hpcbatch.core import codec
from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.model import JobSpec, NodeRange, Resources
from hpcbatch.core.state import State
from tests.core.sim import Sim, retry

FABRIC = (("FI_PROVIDER", "efa"), ("HPCBATCH_FABRIC", "efa"), ("OMPI_MCA_pml", "cm"))


def _cluster(ports: tuple[int | None, ...] = (7001, 7002, 7003), vcpus: int = 4) -> Sim:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="ce", ce_type="MANAGED", kind="LOCAL")
    for i, port in enumerate(ports):
        sim.do(
            ev.NodeJoined,
            node=f"n{i}",
            ce="ce",
            capacity=Resources(vcpus * 1000, 8192),
            address=f"10.0.0.{i + 1}",
            launch_port=port,
            fabric_environment=FABRIC,
        )
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "ce"),))
    return sim


def _env(launch: LaunchAttempt) -> dict[str, str]:
    return dict(launch.environment)


def test_every_node_gets_the_allocation_the_peers_and_the_main_node() -> None:
    sim = _cluster()
    sim.gang_definition(nodes=3, main_node=1)
    parent = sim.submit_gang()
    others = sim.schedule()
    for launch in others:
        sim.start(launch)
    main = sim.launched[-1]
    assert main.job_id == f"{parent.job_id}#1"  # launched after the barrier
    nodes = [sim.state.jobs[f"{parent.job_id}#{i}"].attempts[-1].node for i in range(3)]
    address = {f"n{i}": f"10.0.0.{i + 1}" for i in range(3)}
    port = {f"n{i}": 7001 + i for i in range(3)}
    hosts = ",".join(f"{address[n]}:4" for n in nodes)  # whole 4-vCPU nodes, index order
    peers = ",".join(f"{address[n]}={port[n]}" for n in nodes)
    for launch in [*others, main]:
        env = _env(launch)
        assert env["HPCBATCH_HOSTS"] == hosts
        assert env["HPCBATCH_LAUNCH_PEERS"] == peers
        assert env["HPCBATCH_MAIN_NODE"] == address[nodes[1]]
        assert env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == address[nodes[1]]


def test_a_node_without_a_launch_server_is_no_peer_but_still_a_host() -> None:
    sim = _cluster(ports=(7001, None))
    sim.gang_definition(nodes=2)
    sim.submit_gang()
    (other,) = sim.schedule()
    env = _env(other)
    assert len(env["HPCBATCH_HOSTS"].split(",")) == 2
    assert env["HPCBATCH_LAUNCH_PEERS"] == "10.0.0.1=7001"


def test_every_node_of_one_try_names_the_same_gang_try_and_a_retry_another() -> None:
    sim = _cluster()
    sim.gang_definition(nodes=3)
    parent = sim.submit_gang(retry=retry(2))
    first = sim.schedule()
    assert {launch.gang_try for launch in first} == {f"{parent.job_id}/1"}
    sim.end(first[0], exit_code=3)  # a node fails: the gang is retried
    for launch in first[1:]:
        sim.end(launch, exit_code=None, reason="killed")
    second = sim.schedule()
    assert second and {launch.gang_try for launch in second} == {f"{parent.job_id}/2"}


def test_ordinary_jobs_get_no_gang_variables_and_no_gang_try() -> None:
    sim = _cluster()
    sim.do(ev.RegisterJobDefinition, name="d", def_type="container", spec=JobSpec(("true",)))
    sim.submit()
    (launch,) = sim.schedule()
    env = _env(launch)
    assert launch.gang_try is None
    assert "HPCBATCH_HOSTS" not in env and "FI_PROVIDER" not in env


def test_gang_nodes_get_the_fabric_unless_the_job_sets_a_variable_itself() -> None:
    sim = _cluster()
    own = JobSpec(
        command=("mpirun", "app"),
        environment=(("FI_PROVIDER", "tcp"),),
        resources=Resources(1000, 512),
    )
    sim.gang_definition(nodes=2, ranges=(NodeRange(0, 1, own),))
    sim.submit_gang()
    (other,) = sim.schedule()
    env = _env(other)
    assert env["FI_PROVIDER"] == "tcp"  # the job's own value wins
    assert env["OMPI_MCA_pml"] == "cm" and env["HPCBATCH_FABRIC"] == "efa"


def test_a_node_keeps_its_launch_port_group_and_fabric_through_the_store() -> None:
    sim = _cluster()
    sim.do(
        ev.NodeJoined,
        node="g",
        ce="ce",
        capacity=Resources(1000, 512),
        launch_port=9,
        placement_group="rack-a",
        fabric_environment=FABRIC,
    )
    docs = {"node": [codec.node_to_doc(n) for n in sim.state.nodes.values()]}
    restored = State()
    codec.rebuild(restored, json.loads(json.dumps(docs)))
    node = restored.nodes["g"]
    assert (node.launch_port, node.placement_group, node.fabric_env) == (9, "rack-a", FABRIC)
    assert restored.nodes["n0"].launch_port == 7001
