"""Scheduling order, placement, backfill and the reasons a waiting job gives."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.explain import Memo, explain
from hpcbatch.core.model import Dependency, Job, JobStatus
from hpcbatch.core.scheduler import schedule
from hpcbatch.errors import ValidationError
from tests.core.sim import Sim


def test_higher_priority_queue_goes_first() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1, queue="low", priority=1)
    sim.do(ev.CreateJobQueue, name="high", priority=10, ce_order=((1, "local"),))
    low = sim.submit(queue="low")
    high = sim.submit(queue="high")
    (launch,) = sim.schedule()
    assert launch.job_id == high.job_id
    assert low.status is JobStatus.RUNNABLE


def test_scheduling_priority_then_submission_order_within_a_queue() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1)
    first = sim.submit()
    urgent = sim.submit(priority=50)
    second = sim.submit()
    order = []
    for _ in range(3):
        (launch,) = sim.schedule()
        order.append(launch.job_id)
        sim.start(launch)
        sim.end(launch, 0)
    assert order == [urgent.job_id, first.job_id, second.job_id]


def test_compute_environment_order_is_tried_in_order() -> None:
    sim = Sim()
    for ce in ("first", "second"):
        sim.do(ev.CreateComputeEnvironment, name=ce, ce_type="MANAGED", kind="LOCAL")
        sim.do(ev.NodeJoined, node=f"{ce}-n", ce=ce, capacity=ev.Resources(1000, 1024, 0))
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((2, "second"), (1, "first")))
    sim.do(
        ev.RegisterJobDefinition, name="d", def_type="container", spec=ev.JobSpec(command=("true",))
    )
    a, b = sim.submit(), sim.submit()
    launches = {launch.job_id: launch.node for launch in sim.schedule()}
    assert launches == {a.job_id: "first-n", b.job_id: "second-n"}


def test_gpus_are_allocated_whole_in_the_nodes_order_and_never_twice() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, gpus=4)
    sim.submit(gpus=2)
    sim.submit(gpus=2)
    sim.submit(gpus=1)
    launches = sim.schedule()
    ids = [f"GPU-local-n0-{k}" for k in range(4)]
    assert sorted(launch.gpus for launch in launches) == [tuple(ids[:2]), tuple(ids[2:])]
    assert dict(launches[0].environment)["CUDA_VISIBLE_DEVICES"] == ",".join(ids[:2])


def test_small_job_backfills_only_when_it_cannot_delay_the_big_one() -> None:
    sim = Sim().cluster(nodes=1, vcpus=4)
    running = sim.submit(vcpus=2, timeout_s=600)
    (launch,) = sim.schedule()
    sim.start(launch)
    big = sim.submit(vcpus=4)
    long = sim.submit(vcpus=2, timeout_s=6000)  # fits now, but would delay the big job
    endless = sim.submit(vcpus=2)
    short = sim.submit(vcpus=2, timeout_s=60)  # ends before the big job could start
    started = sim.schedule()
    assert [s.job_id for s in started] == [short.job_id]
    assert sim.state.jobs[short.job_id].start_reason == f"backfilled ahead of {big.job_id}"
    assert long.status is JobStatus.RUNNABLE and endless.status is JobStatus.RUNNABLE
    (reservation,) = sim.plans[-1].reservations
    assert reservation.job_id == big.job_id and reservation.at == launch_end(sim, running)


def launch_end(sim: Sim, job: Job) -> int:
    attempt = job.attempts[-1]
    return attempt.started_at + job.spec.timeout_s * 1000


def test_job_no_node_can_hold_blocks_nobody_and_says_why() -> None:
    sim = Sim().cluster(nodes=2, vcpus=8)
    huge = sim.submit(vcpus=64)
    small = sim.submit()
    (launch,) = sim.schedule()
    assert launch.job_id == small.job_id
    assert sim.state.jobs[small.job_id].start_reason == "started immediately"
    assert explain(sim.state, huge) == (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 64 vCPUs; "
        "the largest node in compute environments [local] has 8"
    )


def test_strict_submit_refuses_what_no_node_can_hold() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8)
    with pytest.raises(ValidationError, match="needs 64 vCPUs.*refused: --strict"):
        sim.submit(vcpus=64, strict=True)
    assert sim.state.jobs == {}


def test_waiting_reasons() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1)
    first = sim.submit()
    second = sim.submit()
    third = sim.submit()
    dependent = sim.submit(depends_on=(Dependency(first.job_id),))
    assert explain(sim.state, third) == (
        "waiting for capacity: 2 jobs ahead in queue q; needs 1 vCPU, 512 MiB"
    )
    assert explain(sim.state, dependent) == f"waiting for dependency {first.job_id} (RUNNABLE)"
    sim.schedule()
    assert explain(sim.state, third) == (
        "waiting for capacity: every node in [local] is full: 1/1 vCPU in use; "
        "1 job ahead in queue q; needs 1 vCPU, 512 MiB"
    )
    node = next(iter(sim.state.nodes))
    sim.do(ev.NodeLost, node=node, reason="gone")
    assert explain(sim.state, second) == (
        f"waiting for nodes: every node that can hold it is unavailable ({node} DOWN)"
    )
    sim.do(ev.UpdateJobQueue, ref="q", state="DISABLED")
    assert explain(sim.state, second).startswith("queue disabled")


def test_jobs_explained_in_one_request_share_what_the_nodes_say() -> None:
    sim = Sim().cluster(nodes=2, vcpus=1)
    jobs = [sim.submit() for _ in range(4)] + [sim.submit(vcpus=2)]
    sim.schedule()
    memo = Memo()
    alone = [explain(sim.state, job) for job in jobs]
    assert [explain(sim.state, job, memo=memo) for job in jobs] == alone
    assert alone[2] == (
        "waiting for capacity: every node in [local] is full: 2/2 vCPUs in use; "
        "0 jobs ahead in queue q; needs 1 vCPU, 512 MiB"
    )
    assert alone[4].startswith("MISCONFIGURATION")
    assert len(memo.nodes) == 2  # one reading of the nodes for each job size, not each job
    # a queue on other compute environments reads its own nodes, even for the same size
    sim.cluster(nodes=1, vcpus=1, ce="small", queue="q2")
    sim.cluster(nodes=1, vcpus=2, ce="big", queue="q3")
    on_small, on_big = sim.submit(queue="q2", vcpus=2), sim.submit(queue="q3", vcpus=2)
    assert explain(sim.state, on_small, memo=memo).startswith("MISCONFIGURATION")
    assert explain(sim.state, on_big, memo=memo) == explain(sim.state, on_big)
    assert not explain(sim.state, on_big, memo=memo).startswith("MISCONFIGURATION")


def test_no_nodes_yet_is_not_a_misconfiguration() -> None:
    sim = Sim()
    sim.do(ev.CreateComputeEnvironment, name="local", ce_type="MANAGED", kind="LOCAL")
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "local"),))
    sim.do(
        ev.RegisterJobDefinition, name="d", def_type="container", spec=ev.JobSpec(command=("true",))
    )
    job = sim.submit(vcpus=64)
    assert (
        explain(sim.state, job) == "waiting for nodes: compute environments [local] have no nodes"
    )


def test_a_pass_over_a_full_cluster_stops_early() -> None:
    sim = Sim().cluster(nodes=1, vcpus=1)
    sim.submit(array_size=5000)
    assert len(sim.schedule()) == 1
    plan = schedule(sim.state, sim.now)
    assert plan.placements == () and plan.reservations == ()
