"""A gang's life: the start barrier, the parent following its main node, ending together."""

from __future__ import annotations

import json

from hpcbatch.core import codec
from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.invariants import check_invariants
from hpcbatch.core.model import Job, JobStatus, Resources
from hpcbatch.core.state import State
from tests.core.sim import Sim, retry


def _placed(nodes: int = 3, **submit: object) -> tuple[Sim, Job, list[LaunchAttempt]]:
    sim = Sim().cluster(nodes=nodes, vcpus=4)
    sim.gang_definition(nodes=nodes)
    parent = sim.submit_gang(**submit)
    return sim, parent, sim.schedule()


def _running(nodes: int = 3, **submit: object) -> tuple[Sim, Job, dict[int, LaunchAttempt]]:
    """Every node RUNNING: the others started, then the main node (0) launched and started."""
    sim, parent, launches = _placed(nodes, **submit)
    main_launch: list[LaunchAttempt] = []
    for launch in launches:
        before = len(sim.launched)
        sim.start(launch)
        main_launch += sim.launched[before:]
    (main,) = main_launch
    sim.start(main)
    by_index = {sim.state.jobs[x.job_id].node_index or 0: x for x in [*launches, main]}
    return sim, parent, by_index


def test_the_main_node_starts_only_once_every_other_node_is_running() -> None:
    sim, parent, launches = _placed(nodes=3)
    assert {x.job_id for x in launches} == {f"{parent.job_id}#1", f"{parent.job_id}#2"}
    sim.start(launches[0])
    assert len(sim.launched) == 2  # node 2 not up yet: the main node is still held
    assert "barrier" in (sim.node(parent, 0).status_reason or "")
    sim.start(launches[1])
    main = sim.launched[-1]
    assert main.job_id == f"{parent.job_id}#0"
    assert parent.status is JobStatus.STARTING  # the parent follows the main node
    sim.start(main)
    assert parent.status is JobStatus.RUNNING
    sim.start(launches[1])  # a repeated report does not launch the main node twice
    assert len(sim.launched) == 3


def test_a_node_that_ends_well_before_the_barrier_opens_still_counts_as_up() -> None:
    """`submit --nodes 2 -- true`: node 1 may start and exit 0 in one agent turn, before the
    main node is launched; the barrier must open, not hold the main node forever."""
    sim, parent, launches = _placed(nodes=3)
    sim.start(launches[0])
    sim.end(launches[0], 0)  # up and done before node 2 is up
    assert len(sim.launched) == 2
    sim.start(launches[1])
    main = sim.launched[-1]
    assert main.job_id == f"{parent.job_id}#0"
    sim.start(main)
    sim.end(main, 0)
    assert parent.status is JobStatus.SUCCEEDED


def test_the_barrier_opens_when_the_last_other_node_ends_well_without_a_running_report() -> None:
    sim, parent, launches = _placed(nodes=2)
    (other,) = launches
    sim.do(  # started and ended within one agent turn: reported once, by its end
        ev.AttemptEnded,
        node=other.node,
        attempt_id=other.attempt_id,
        stopped_at=sim.now,
        exit_code=0,
        started_at=sim.now,
        pid=7,
    )
    main = sim.launched[-1]
    assert main.job_id == f"{parent.job_id}#0"
    sim.start(main)
    sim.end(main, 0)
    assert parent.status is JobStatus.SUCCEEDED
    check_invariants(sim.state)


def test_when_the_main_node_exits_the_others_are_stopped_and_its_code_decides() -> None:
    sim, parent, nodes = _running(nodes=3)
    sim.end(nodes[0], 0)
    assert parent.status is JobStatus.SUCCEEDED
    assert sorted(k.attempt_id for k in sim.killed) == [
        f"{parent.job_id}#1/1",
        f"{parent.job_id}#2/1",
    ]
    for i in (1, 2):
        sim.end(nodes[i], 137, "killed")
    assert all(sim.node(parent, i).status is JobStatus.SUCCEEDED for i in range(3))
    assert all(not node.attempts for node in sim.state.nodes.values())


def test_a_failing_node_fails_the_gang_naming_it_and_stops_every_other_node() -> None:
    sim, parent, nodes = _running(nodes=3)
    sim.end(nodes[2], 1)
    assert parent.status is JobStatus.FAILED
    host = nodes[2].node
    assert parent.status_reason == f"node 2 ({host}) exited 1"
    assert {k.attempt_id for k in sim.killed} == {f"{parent.job_id}#0/1", f"{parent.job_id}#1/1"}
    sim.end(nodes[0], 143)
    sim.end(nodes[1], 143)
    assert all(sim.node(parent, i).status is JobStatus.FAILED for i in range(3))
    assert all(not node.attempts for node in sim.state.nodes.values())


def test_a_lost_host_before_the_barrier_fails_the_gang_and_frees_the_held_main_node() -> None:
    sim, parent, launches = _placed(nodes=3)
    lost = launches[0].node
    sim.do(ev.NodeLost, node=lost, reason="gone")
    assert parent.status is JobStatus.FAILED
    index = sim.state.jobs[launches[0].job_id].node_index
    assert parent.status_reason == f"node {index} lost: Host lost: {lost}"
    main = sim.node(parent, 0)
    assert main.status is JobStatus.FAILED  # held at the barrier: never sent, ends at once
    assert [k.attempt_id for k in sim.killed] == [launches[1].attempt_id]


def test_a_lost_main_node_names_itself() -> None:
    sim, parent, nodes = _running(nodes=2)
    sim.do(ev.NodeLost, node=nodes[0].node, reason="gone")
    assert parent.status_reason == f"node 0 lost: Host lost: {nodes[0].node}"


def test_a_node_past_its_timeout_is_killed_and_fails_the_gang_unretried() -> None:
    sim, parent, nodes = _running(nodes=2, timeout_s=60, retry=retry(3))
    sim.now += 60_000 + 31_000
    sim.do(ev.Tick)
    assert {k.attempt_id for k in sim.killed} == {nodes[0].attempt_id, nodes[1].attempt_id}
    sim.end(nodes[1], 137)
    assert parent.status is JobStatus.FAILED
    assert parent.status_reason == (
        f"node 1 ({nodes[1].node}) exited 137: Job attempt duration exceeded timeout"
    )
    sim.end(nodes[0], 137)
    assert not any(node.attempts for node in sim.state.nodes.values())


def test_retry_strategy_applies_to_the_whole_gang() -> None:
    sim, parent, nodes = _running(nodes=2, retry=retry(2))
    sim.end(nodes[1], 1)
    assert parent.status is JobStatus.RUNNABLE
    assert sim.node(parent, 0).status is JobStatus.RUNNING  # being stopped
    assert sim.schedule() == []  # not placed again while a node is still stopping
    sim.end(nodes[0], 143)
    assert all(sim.node(parent, i).status is JobStatus.PENDING for i in range(2))
    (again,) = sim.schedule()
    assert again.attempt_id == f"{parent.job_id}#1/2"
    assert sim.node(parent, 0).attempts[-1].number == 2


def test_a_node_that_finishes_early_is_reopened_when_the_gang_retries() -> None:
    sim, parent, nodes = _running(nodes=3, retry=retry(2))
    sim.end(nodes[1], 0)
    assert sim.node(parent, 1).status is JobStatus.SUCCEEDED
    assert parent.status is JobStatus.RUNNING
    sim.end(nodes[2], 1)
    assert parent.status is JobStatus.RUNNABLE
    sim.end(nodes[0], 143)
    assert all(sim.node(parent, i).status is JobStatus.PENDING for i in range(3))


def test_terminate_stops_every_node_and_fails_the_job() -> None:
    sim, parent, nodes = _running(nodes=3)
    sim.do(ev.TerminateJob, job_id=parent.job_id, reason="by user")
    assert len(sim.killed) == 3
    for i in range(3):
        sim.end(nodes[i], 143)
    assert parent.status is JobStatus.FAILED and parent.status_reason == "by user"
    assert all(sim.node(parent, i).status is JobStatus.FAILED for i in range(3))


def test_terminate_at_the_barrier_ends_the_held_main_node_at_once() -> None:
    sim, parent, launches = _placed(nodes=3)
    sim.do(ev.TerminateJob, job_id=parent.job_id, reason="by user")
    assert parent.status is JobStatus.FAILED and parent.status_reason == "by user"
    assert sorted(k.attempt_id for k in sim.killed) == sorted(x.attempt_id for x in launches)
    for launch in launches:
        sim.end(launch, 143)
    assert not any(node.attempts for node in sim.state.nodes.values())


def test_cancel_of_a_waiting_gang_fails_its_node_jobs() -> None:
    sim = Sim().cluster(nodes=1)
    sim.gang_definition(nodes=2)
    parent = sim.submit_gang()
    sim.do(ev.CancelJob, job_id=parent.job_id, reason="no")
    assert parent.status is JobStatus.FAILED
    assert all(sim.node(parent, i).status is JobStatus.FAILED for i in range(2))


def test_every_node_has_its_multinode_environment() -> None:
    sim = Sim().cluster(nodes=0)
    for i in range(3):
        sim.do(
            ev.NodeJoined,
            node=f"h{i}",
            ce="local",
            capacity=Resources(4000, 8192, 0),
            address=f"10.0.0.{i + 1}",
        )
    sim.gang_definition(nodes=3, main_node=1)
    parent = sim.submit_gang()
    launches = sim.schedule()
    for launch in launches:
        sim.start(launch)
    everything = [*launches, sim.launched[-1]]
    main_host = sim.node(parent, 1).attempts[-1].node
    main_address = sim.state.nodes[main_host].address
    for launch in everything:
        env = dict(launch.environment)
        index = sim.state.jobs[launch.job_id].node_index
        assert env["AWS_BATCH_JOB_ID"] == f"{parent.job_id}#{index}"
        assert env["AWS_BATCH_JOB_NODE_INDEX"] == str(index)
        assert env["AWS_BATCH_JOB_NUM_NODES"] == "3"
        assert env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "1"
        assert env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == main_address
    assert main_address is not None


def test_a_rejoining_node_does_not_launch_a_main_node_held_at_the_barrier() -> None:
    sim, parent, launches = _placed(nodes=2)
    held = sim.node(parent, 0).attempts[-1].node
    node = sim.state.nodes[held]
    commands = sim.do(
        ev.NodeJoined, node=held, ce="local", capacity=node.capacity, known_attempts=()
    )
    assert commands == [] and sim.node(parent, 0).status is JobStatus.STARTING


def test_a_head_restart_keeps_a_running_gang() -> None:
    sim, parent, nodes = _running(nodes=3)
    docs = {
        "compute_environment": [codec.ce_to_doc(c) for c in sim.state.ces.values()],
        "queue": [codec.queue_to_doc(q) for q in sim.state.queues.values()],
        "job_definition": [
            codec.definition_to_doc(d) for r in sim.state.definitions.values() for d in r.values()
        ],
        "node": [codec.node_to_doc(n) for n in sim.state.nodes.values()],
        "job": [codec.job_to_doc(j) for j in sim.state.jobs.values()],
    }
    restored = State()
    codec.rebuild(restored, json.loads(json.dumps(docs)))
    check_invariants(restored)
    again = restored.jobs[parent.job_id]
    assert again.multinode == parent.multinode
    node = restored.jobs[f"{parent.job_id}#2"]
    assert (node.node_index, node.parent_id, node.status) == (2, parent.job_id, JobStatus.RUNNING)
    assert node.spec == sim.node(parent, 2).spec
    host = restored.nodes[nodes[2].node]
    assert host.allocated == host.capacity
    sim.state = restored
    sim.end(nodes[2], 1)  # the gang goes on being a gang after the restart
    assert again.status is JobStatus.FAILED and len(sim.killed) == 2
