"""The pure decision of which pool hosts an SSH compute environment takes and releases."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.explain import explain
from hpcbatch.core.host_pools import (
    Demand,
    PoolHost,
    PoolPlan,
    plan_pool,
    target_vcpus,
    waiting_vcpus,
)
from hpcbatch.core.model import JobSpec, JobStatus, Resources, TimeLimitAction
from tests.core.sim import Sim

POOLS = {"gpu": (PoolHost("h1", "gpu"), PoolHost("h2", "gpu"))}


def _sim(**bounds: int) -> Sim:
    sim = Sim()
    sim.do(
        ev.CreateComputeEnvironment,
        name="ce",
        ce_type="MANAGED",
        kind="SSH",
        echo={"computeResources": {"type": "SSH", "instanceTypes": ["gpu"]}},
        **bounds,
    )
    return sim


IDLE = Demand(idle_ms={"h1": 60_000, "h2": 60_000})  # both idle for the release time


def _plan(
    sim: Sim,
    held: dict[str, str],
    unreachable: dict[str, str] | None = None,
    demand: Demand = IDLE,
) -> PoolPlan:
    ce = sim.state.ces["ce"]
    return plan_pool(ce, POOLS, held, sim.state.nodes, unreachable or {}, demand)


def _join(sim: Sim, host: str, vcpus: int = 2) -> None:
    sim.do(ev.NodeJoined, node=host, ce="ce", capacity=Resources(vcpus * 1000, 4096))


def test_target_is_desired_within_min_and_max() -> None:
    sim = _sim(max_vcpus=4, min_vcpus=1, desired_vcpus=2)
    assert target_vcpus(sim.state.ces["ce"]) == 2
    assert target_vcpus(_sim(max_vcpus=4, min_vcpus=3).state.ces["ce"]) == 3


def test_takes_one_host_at_a_time_until_the_target_is_covered() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=2)
    plan = _plan(sim, {})
    assert (plan.take, plan.status) == (("h1",), "CREATING")
    assert _plan(sim, {"h1": "ce"}).take == ()  # h1 still connecting: wait for its size
    _join(sim, "h1")
    assert _plan(sim, {"h1": "ce"}) == PoolPlan((), (), "VALID", "ComputeEnvironment Healthy")


def test_a_bigger_target_takes_the_next_host_and_a_smaller_releases_the_last() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=2)
    _join(sim, "h1")
    sim.do(ev.UpdateComputeEnvironment, ref="ce", desired_vcpus=4)
    assert _plan(sim, {"h1": "ce"}).take == ("h2",)
    _join(sim, "h2")
    sim.do(ev.UpdateComputeEnvironment, ref="ce", desired_vcpus=2)
    plan = _plan(sim, {"h1": "ce", "h2": "ce"})
    assert (plan.release, plan.status) == (("h2",), "UPDATING")


def test_a_host_held_by_another_ce_or_unreachable_is_skipped() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=2)
    assert _plan(sim, {"h1": "other"}).take == ("h2",)
    assert _plan(sim, {}, {"h1": "connection refused"}).take == ("h2",)


def test_a_host_that_never_connected_is_released_and_all_unreachable_is_invalid() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=2)
    sim.do(ev.NodeLost, node="h1", ce="ce", reason="connection refused")
    plan = _plan(sim, {"h1": "ce"}, {"h2": "no route to host"})
    assert (plan.release, plan.status) == (("h1",), "INVALID")  # says why in the same round
    plan = _plan(sim, {}, {"h1": "connection refused", "h2": "no route to host"})
    assert plan.status == "INVALID"
    assert plan.reason == (
        "host pool gpu has no reachable host (h1: connection refused; h2: no route to host)"
    )


def test_a_host_whose_configured_vcpus_pass_max_is_skipped() -> None:
    sim = _sim(max_vcpus=2, desired_vcpus=2)
    pools = {"gpu": (PoolHost("big", "gpu", 8), PoolHost("small", "gpu", 2))}
    plan = plan_pool(sim.state.ces["ce"], pools, {}, sim.state.nodes, {})
    assert plan.take == ("small",)


def test_a_busy_host_is_not_released() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=4).cluster(nodes=0, ce="ce")
    _join(sim, "h1")
    _join(sim, "h2")
    sim.submit()
    sim.schedule()
    busy = next(n.name for n in sim.state.nodes.values() if n.attempts)
    sim.do(ev.UpdateComputeEnvironment, ref="ce", desired_vcpus=2)
    release = _plan(sim, {"h1": "ce", "h2": "ce"}).release
    assert busy not in release and len(release) == 1


def test_waiting_jobs_grow_the_target_to_max_and_idle_hosts_go_after_the_idle_time() -> None:
    sim = _sim(max_vcpus=4, min_vcpus=0)
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "ce"),))
    sim.do(ev.RegisterJobDefinition, name="d", def_type="container", spec=JobSpec(("true",)))
    assert _plan(sim, {}) == PoolPlan((), (), "VALID", "ComputeEnvironment Healthy")
    for _ in range(3):
        sim.submit(vcpus=2)
    sim.schedule()  # no node: all three stay RUNNABLE
    ce = sim.state.ces["ce"]
    assert waiting_vcpus(sim.state, ce, 4) == 4  # counted up to maxvCpus only
    assert _plan(sim, {}, demand=Demand(waiting_vcpus=4)).take == ("h1",)
    _join(sim, "h1")
    (first,) = sim.schedule()
    waiting = waiting_vcpus(sim.state, ce, 4)
    assert _plan(sim, {"h1": "ce"}, demand=Demand(waiting_vcpus=waiting)).take == ("h2",)
    _join(sim, "h2")
    sim.start(first)
    sim.end(first)
    sim.run_all()  # every job ends: nothing waits, both hosts idle
    held = {"h1": "ce", "h2": "ce"}
    assert _plan(sim, held, demand=Demand(idle_ms={"h1": 5_000, "h2": 5_000})).release == ()
    assert _plan(sim, held).release == ("h2", "h1")  # idle 60 s: down to the floor, 0


def test_a_host_that_connects_past_max_vcpus_is_released_at_once_and_skipped_after() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=4)
    _join(sim, "h1", vcpus=2)
    _join(sim, "h2", vcpus=8)  # its size was unknown until it connected
    plan = _plan(sim, {"h1": "ce", "h2": "ce"}, demand=Demand())
    assert plan.release == plan.too_big == ("h2",)  # not idle yet: released, past the ceiling
    assert plan.status == "UPDATING"
    assert plan.reason == (
        "releasing h2: with it the compute environment would have more than its maxvCpus 4 vCPUs"
    )
    # the head remembers what h2 measured: next time it is known and never taken
    sim.do(ev.RemoveNode, node="h2", reason="released")
    measured = {"gpu": (PoolHost("h1", "gpu", 2), PoolHost("h2", "gpu", 8))}
    ce = sim.state.ces["ce"]
    plan = plan_pool(ce, measured, {"h1": "ce"}, sim.state.nodes, {})
    assert plan.take == ()
    assert plan.reason == (
        "2 of the 4 vCPUs wanted are connected: host pool(s) gpu have no other free reachable host"
    )


def test_no_host_of_max_vcpus_or_fewer_says_so() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=4)
    measured = {"gpu": (PoolHost("h1", "gpu", 8), PoolHost("h2", "gpu", 16))}
    plan = plan_pool(sim.state.ces["ce"], measured, {}, sim.state.nodes, {})
    assert (plan.take, plan.status) == ((), "INVALID")
    assert plan.reason == (
        "host pool(s) gpu have no free reachable host of 4 vCPUs or fewer "
        "(maxvCpus; h1: 8 vCPUs; h2: 16 vCPUs)"
    )


def _queue(sim: Sim) -> Sim:
    sim.do(ev.CreateJobQueue, name="q", priority=1, ce_order=((1, "ce"),))
    sim.do(ev.RegisterJobDefinition, name="d", def_type="container", spec=JobSpec(("true",)))
    return sim


SIZED = {"gpu": (PoolHost("h1", "gpu", 4, 8192, 0), PoolHost("h2", "gpu", 8, None, None))}


def test_a_job_no_pool_host_could_hold_draws_no_host_and_says_why() -> None:
    sim = _queue(_sim(max_vcpus=16, min_vcpus=0))
    huge = sim.submit(vcpus=32)
    sim.schedule()
    ce = sim.state.ces["ce"]
    sim.do(ev.PoolHostsKnown, pools=tuple(SIZED.items()))  # the head says what it knows
    assert waiting_vcpus(sim.state, ce, 16, SIZED) == 0
    assert _plan(sim, {}, demand=Demand(waiting_vcpus=0)).take == ()
    assert explain(sim.state, huge) == (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 32 vCPUs; no host of host pool(s) "
        "gpu can hold it (the largest has 8 vCPUs)"
    )
    # a size unknown proves nothing: 1 GPU may be on h2 (its GPUs are not known yet)
    gpu_job = sim.submit(vcpus=1, gpus=1)
    sim.schedule()
    assert waiting_vcpus(sim.state, ce, 16, SIZED) == 1
    assert explain(sim.state, gpu_job) != explain(sim.state, huge)
    # without sizes (pools not known), the old count: every RUNNABLE job draws
    assert waiting_vcpus(sim.state, ce, 16) == 16


def test_memory_and_gpus_known_from_the_config_judge_too() -> None:
    sim = _queue(_sim(max_vcpus=16, min_vcpus=0))
    pools = {"gpu": (PoolHost("h1", "gpu", 4, 8192, 0),)}
    job = sim.submit(vcpus=1, memory=65536)
    sim.schedule()
    sim.do(ev.PoolHostsKnown, pools=tuple(pools.items()))
    assert waiting_vcpus(sim.state, sim.state.ces["ce"], 16, pools) == 0
    assert explain(sim.state, job) == (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 65536 MiB; no host of host pool(s) "
        "gpu can hold it (the largest has 8192 MiB)"
    )


def test_an_invalid_ce_stays_invalid_while_its_hosts_are_retried() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=2)
    why = {"h1": "connection refused", "h2": "no route to host"}
    invalid = _plan(sim, {}, why)
    assert invalid.status == "INVALID"
    previous = (invalid.status, invalid.reason)
    ce = sim.state.ces["ce"]
    for _ in range(3):  # the retry time passes: h1 is tried again, and fails again
        retry = plan_pool(ce, POOLS, {}, sim.state.nodes, {"h2": why["h2"]}, IDLE, previous)
        assert retry.take == ("h1",)
        assert (retry.status, retry.reason) == previous  # not CREATING
        connecting = plan_pool(ce, POOLS, {"h1": "ce"}, sim.state.nodes, {}, IDLE, previous)
        assert (connecting.status, connecting.reason) == previous
        sim.do(ev.NodeLost, node="h1", ce="ce", reason="connection refused")
        failed = plan_pool(ce, POOLS, {"h1": "ce"}, sim.state.nodes, {"h2": why["h2"]})
        assert failed.status == "INVALID" and failed.release == ("h1",)
        previous = (failed.status, failed.reason)
        sim.do(ev.RemoveNode, node="h1", reason="released")
    _join(sim, "h1")  # a host connects at last: VALID
    plan = plan_pool(ce, POOLS, {"h1": "ce"}, sim.state.nodes, {}, IDLE, previous)
    assert plan.status == "VALID"
    # without a previous status (the CE updated), a host connecting says CREATING again
    sim.do(ev.RemoveNode, node="h1", reason="released")
    assert _plan(sim, {}).status == "CREATING"


def test_a_time_limit_action_cancels_a_job_no_pool_host_could_hold() -> None:
    """The reason DescribeJobs shows is the one the queue's jobStateTimeLimitActions match."""
    sim = _queue(_sim(max_vcpus=16, min_vcpus=0))
    sim.do(ev.PoolHostsKnown, pools=tuple(SIZED.items()))
    misconfigured = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
    action = TimeLimitAction(reason=misconfigured, max_time_s=600)
    sim.do(ev.UpdateJobQueue, ref="q", time_limit_actions=(action,))
    job = sim.submit(vcpus=32)
    sim.do(ev.Tick)
    sim.now += 601_000
    sim.do(ev.Tick)
    assert job.status is JobStatus.FAILED
    assert misconfigured in (job.status_reason or "")


def test_a_lowered_max_vcpus_releases_the_hosts_past_it_busy_or_not() -> None:
    sim = _sim(max_vcpus=4, desired_vcpus=4).cluster(nodes=0, ce="ce")
    _join(sim, "h1")
    _join(sim, "h2")
    for _ in range(4):
        sim.submit()
    assert len(sim.schedule()) == 4  # both hosts busy
    sim.do(ev.UpdateComputeEnvironment, ref="ce", max_vcpus=2)
    plan = _plan(sim, {"h1": "ce", "h2": "ce"}, demand=Demand())
    assert plan.release == plan.too_big == ("h2",)  # the head drains it: its jobs finish
    sim.submit()
    assert sim.schedule() == []  # 4 vCPUs held, maxvCpus 2: nothing new until under it


def test_a_gang_needing_more_hosts_than_the_pools_have_draws_none_and_says_why() -> None:
    sim = _queue(_sim(max_vcpus=16, min_vcpus=0))
    ce = sim.state.ces["ce"]
    sim.gang_definition("three", nodes=3)
    sim.gang_definition("wide", nodes=2, vcpus=6)  # only h2 (8 vCPUs) could hold a node
    sim.gang_definition("pair", nodes=2)
    three, wide = sim.submit_gang("three"), sim.submit_gang("wide")
    sim.schedule()
    sim.do(ev.PoolHostsKnown, pools=tuple(SIZED.items()))
    assert waiting_vcpus(sim.state, ce, 16, SIZED) == 0
    assert explain(sim.state, three) == (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 3 hosts, one per node; host pool(s) "
        "gpu of one compute environment have at most 2 that could hold its nodes"
    )
    assert explain(sim.state, wide) == (
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs 2 hosts, one per node; host pool(s) "
        "gpu of one compute environment have at most 1 that could hold its nodes"
    )
    pair = sim.submit_gang("pair")  # two hosts for two nodes: it draws them
    sim.schedule()
    assert waiting_vcpus(sim.state, ce, 16, SIZED) == 2
    assert "MISCONFIGURATION" not in (explain(sim.state, pair) or "")
