"""Consumable resources in the pure core: the scheduler's gate, holds and releases on every
kind of end, NON_REPLENISHABLE use, updates and deletes, explain, and a restart; plus a
property over random histories (in use never above the total, everything returned)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcbatch.core import events as ev
from hpcbatch.core.consumable_resources import jobs_needing
from hpcbatch.core.explain import explain
from hpcbatch.core.model import (
    ACTIVE,
    JobSpec,
    JobStatus,
    NodeRange,
    TimeLimitAction,
)
from hpcbatch.core.scheduler import schedule
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError
from tests.core.sim import Sim, retry


def licensed(total: int = 2, kind: str = "REPLENISHABLE", nodes: int = 2) -> Sim:
    sim = Sim().cluster(nodes=nodes, vcpus=8)
    sim.do(ev.CreateConsumableResource, name="matlab", total=total, resource_type=kind)
    sim.do(
        ev.RegisterJobDefinition,
        name="m",
        def_type="container",
        spec=JobSpec(command=("run",), consumables=(("matlab", 1),)),
    )
    return sim


def running(sim: Sim) -> list[str]:
    return sorted(j.job_id for j in sim.state.jobs.values() if j.status in ACTIVE)


def test_two_licenses_run_two_jobs_at_once_and_the_rest_wait_with_a_reason() -> None:
    sim = licensed(total=2)
    jobs = [sim.submit(definition="m", job_id=f"j{i}") for i in range(5)]
    launches = sim.schedule()
    assert [launch.job_id for launch in launches] == ["j0", "j1"]
    resource = sim.state.consumables["matlab"]
    assert (resource.in_use, resource.available) == (2, 0)
    for job in jobs[2:]:
        assert explain(sim.state, job) == (
            'waiting for consumable resource "matlab": needs 1, 0 of 2 available (2 in use)'
        )
    assert sim.schedule() == []  # nodes are free, licenses are not
    sim.start(launches[0])
    sim.end(launches[0], 0)
    assert resource.in_use == 1
    assert [launch.job_id for launch in sim.schedule()] == ["j2"]


def test_a_license_wait_takes_no_node_reservation_and_blocks_no_other_job() -> None:
    sim = licensed(total=1, nodes=1)
    first = sim.submit(definition="m", job_id="a", timeout_s=600)
    sim.schedule()
    assert first.status is JobStatus.STARTING
    sim.submit(definition="m", job_id="b")  # waits for the license
    other = sim.submit(job_id="c", vcpus=2)  # needs no license
    plan = schedule(sim.state, sim.now)
    assert plan.reservations == ()
    assert [p.job_id for p in plan.placements] == ["c"]
    assert plan.placements[0].backfill  # it started ahead of b: recorded
    sim.do(ev.PlanApplied, plan=plan)
    assert other.status is JobStatus.STARTING


def test_a_job_short_of_a_unit_keeps_it_from_later_jobs_in_the_pass() -> None:
    sim = licensed(total=2)
    sim.do(
        ev.RegisterJobDefinition,
        name="big",
        def_type="container",
        spec=JobSpec(command=("run",), consumables=(("matlab", 2),)),
    )
    hog = sim.submit(definition="m", job_id="hog")
    sim.schedule()
    big = sim.submit(definition="big", job_id="big")
    small = sim.submit(definition="m", job_id="small")
    assert sim.schedule() == []  # one unit left: kept for "big", not taken by "small"
    assert small.status is JobStatus.RUNNABLE
    assert explain(sim.state, small) == (
        'waiting for consumable resource "matlab": needs 1, 1 of 2 available, kept for job big '
        "ahead of it, which needs 2"
    )
    sim.end(sim.launched[0], 0)
    assert hog.status is JobStatus.SUCCEEDED
    assert [launch.job_id for launch in sim.schedule()] == ["big"]
    assert big.status is JobStatus.STARTING


@pytest.mark.parametrize("how", ["success", "failure", "terminate", "host lost", "retry"])
def test_units_return_on_every_kind_of_end(how: str) -> None:
    sim = licensed(total=1)
    job = sim.submit(definition="m", retry=retry(2 if how == "retry" else 1))
    (launch,) = sim.schedule()
    sim.start(launch)
    resource = sim.state.consumables["matlab"]
    assert resource.in_use == 1
    if how == "terminate":
        sim.do(ev.TerminateJob, job_id=job.job_id, reason="stop")
        sim.end(launch, 137)
    elif how == "host lost":
        sim.do(ev.NodeLost, node=launch.node, reason="gone")
    else:
        sim.end(launch, 0 if how == "success" else 1)
    assert resource.in_use == 0
    if how == "retry":
        assert job.status is JobStatus.RUNNABLE
        sim.schedule()  # the retry takes the unit again
        assert (job.status, resource.in_use) == (JobStatus.STARTING, 1)
    else:
        assert job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


def test_non_replenishable_units_are_used_up_at_the_start() -> None:
    sim = licensed(total=2, kind="NON_REPLENISHABLE")
    for i in range(3):
        sim.submit(definition="m", job_id=f"j{i}")
    sim.run_all()
    resource = sim.state.consumables["matlab"]
    assert (resource.total, resource.in_use) == (0, 0)
    assert sim.state.jobs["j2"].status is JobStatus.RUNNABLE
    assert "needs 1, more than its total 0" in (explain(sim.state, sim.state.jobs["j2"]) or "")
    sim.restart()  # the used-up total is kept
    assert sim.state.consumables["matlab"].total == 0
    sim.do(ev.UpdateConsumableResource, ref="matlab", operation="ADD", quantity=1)
    sim.run_all()
    assert sim.state.jobs["j2"].status is JobStatus.SUCCEEDED


def test_in_use_is_rebuilt_from_live_attempts_after_a_restart() -> None:
    sim = licensed(total=3)
    for i in range(2):
        sim.submit(definition="m", job_id=f"j{i}")
    for launch in sim.schedule():
        sim.start(launch)
    sim.restart()
    resource = sim.state.consumables["matlab"]
    assert (resource.total, resource.in_use) == (3, 2)
    sim.end(sim.launched[0], 0)
    assert sim.state.consumables["matlab"].in_use == 1


def test_plan_applied_checks_the_units_again() -> None:
    sim = licensed(total=1)
    sim.submit(definition="m", job_id="a")
    plan = schedule(sim.state, sim.now)
    sim.do(ev.UpdateConsumableResource, ref="matlab", operation="SET", quantity=0)
    sim.do(ev.PlanApplied, plan=plan)
    assert sim.state.jobs["a"].status is JobStatus.RUNNABLE


def test_update_refuses_a_total_below_what_is_in_use_naming_the_numbers() -> None:
    sim = licensed(total=2)
    for i in range(2):
        sim.submit(definition="m", job_id=f"j{i}")
    sim.schedule()
    with pytest.raises(ValidationError) as refused:
        sim.do(ev.UpdateConsumableResource, ref="matlab", operation="REMOVE", quantity=1)
    assert refused.value.field == "quantity"
    assert "REMOVE 1 would make totalQuantity 1, below the 2" in str(refused.value)
    sim.do(ev.UpdateConsumableResource, ref="matlab", operation="ADD", quantity=3)
    assert sim.state.consumables["matlab"].total == 5
    with pytest.raises(ValidationError, match="above the 64-bit Long"):
        sim.do(ev.UpdateConsumableResource, ref="matlab", operation="ADD", quantity=2**63 - 1)


def test_a_repeated_client_token_updates_once() -> None:
    sim = licensed(total=2)
    for _ in range(2):
        sim.do(
            ev.UpdateConsumableResource,
            ref="matlab",
            operation="ADD",
            quantity=1,
            client_token="t1",
        )
    assert sim.state.consumables["matlab"].total == 3
    with pytest.raises(ConflictError, match="clientToken"):
        sim.do(
            ev.UpdateConsumableResource,
            ref="matlab",
            operation="ADD",
            quantity=2,
            client_token="t1",
        )
    sim.restart()
    sim.do(
        ev.UpdateConsumableResource, ref="matlab", operation="ADD", quantity=1, client_token="t1"
    )
    assert sim.state.consumables["matlab"].total == 3


def test_delete_is_refused_while_an_unfinished_job_needs_it() -> None:
    sim = licensed(total=1)
    job = sim.submit(definition="m", job_id="j0")
    with pytest.raises(ConflictError, match="needed by job j0 \\(RUNNABLE\\)"):
        sim.do(ev.DeleteConsumableResource, ref="matlab")
    sim.run_all()
    assert job.status is JobStatus.SUCCEEDED
    arn = sim.state.consumables["matlab"].arn
    sim.do(ev.DeleteConsumableResource, ref=arn)
    assert "matlab" not in sim.state.consumables
    with pytest.raises(ValidationError, match="no longer exists"):
        sim.submit(definition="m")


def test_submission_checks_names_and_merges_the_override() -> None:
    sim = licensed(total=4)
    sim.do(ev.CreateConsumableResource, name="tokens", total=10)
    with pytest.raises(ValidationError) as refused:
        sim.submit(definition="m", consumables=(("nope", 1),))
    assert refused.value.field == (
        "consumableResourcePropertiesOverride.consumableResourceList[0].consumableResource"
    )
    arn = sim.state.consumables["matlab"].arn
    job = sim.submit(definition="m", consumables=((arn, 3), ("tokens", 2)))
    assert job.spec.consumables == (("matlab", 3), ("tokens", 2))
    with pytest.raises(ValidationError, match="more than its total 4"):
        sim.submit(definition="m", consumables=(("matlab", 5),), strict=True)
    waits = sim.submit(definition="m", consumables=(("matlab", 5),))
    sim.schedule()
    assert explain(sim.state, waits) == (
        'waiting for consumable resource "matlab": needs 5, more than its total 4; it waits '
        "until the total is raised"
    )


def test_register_refuses_an_unknown_resource_naming_the_field() -> None:
    sim = licensed()
    with pytest.raises(ValidationError) as refused:
        sim.do(
            ev.RegisterJobDefinition,
            name="x",
            def_type="container",
            spec=JobSpec(command=("run",), consumables=(("matlab", 1), ("gone", 1))),
        )
    assert refused.value.field == (
        "consumableResourceProperties.consumableResourceList[1].consumableResource"
    )
    assert "x" not in sim.state.definitions
    with pytest.raises(NotFoundError):
        sim.do(ev.UpdateConsumableResource, ref="gone", operation="SET", quantity=1)
    with pytest.raises(ConflictError, match="already exists"):
        sim.do(ev.CreateConsumableResource, name="matlab", total=1)


def test_a_gang_takes_the_sum_of_its_nodes_needs() -> None:
    sim = licensed(total=3, nodes=4)
    spec = JobSpec(command=("mpirun", "app"), consumables=(("matlab", 1),))
    sim.gang_definition(nodes=2, ranges=(NodeRange(0, 1, spec),))
    first = sim.submit_gang()
    second = sim.submit_gang()
    sim.schedule()
    assert sim.state.jobs[first.job_id].status is JobStatus.STARTING
    assert sim.state.consumables["matlab"].in_use == 2
    assert second.status is JobStatus.RUNNABLE
    assert explain(sim.state, second) == (
        'waiting for consumable resource "matlab": needs 2, 1 of 3 available (2 in use)'
    )


# --- property --------------------------------------------------------------------------------

op = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 3), st.integers(1, 2)),
    st.tuples(st.just("gang"), st.integers(1, 2)),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("start"), st.integers(0, 40)),
    st.tuples(st.just("end"), st.integers(0, 40), st.sampled_from([0, 1, 137])),
    st.tuples(st.just("terminate"), st.integers(0, 40)),
    st.tuples(st.just("lose"), st.integers(0, 1)),
    st.tuples(st.just("rejoin"), st.integers(0, 1)),
    st.tuples(st.just("update"), st.sampled_from(["SET", "ADD", "REMOVE"]), st.integers(0, 3)),
    st.tuples(st.just("restart")),
)


def _live(sim: Sim) -> list[Any]:
    return [
        launch
        for launch in sim.launched
        if (job := sim.state.jobs.get(launch.job_id)) is not None
        and job.current is not None
        and launch.attempt_id.endswith(f"/{job.current.number}")
    ]


def _apply(sim: Sim, step: tuple[Any, ...], ids: list[str]) -> None:
    kind = step[0]
    live = _live(sim)
    if kind == "submit":
        ids.append(
            sim.submit(
                definition="m", consumables=(("matlab", step[1]),), retry=retry(step[2])
            ).job_id
        )
    elif kind == "gang":
        if "mnp" not in sim.state.definitions:
            spec = JobSpec(command=("mpirun", "app"), consumables=(("matlab", 1),))
            sim.gang_definition(nodes=2, ranges=(NodeRange(0, 1, spec),))
        ids.append(sim.submit_gang(retry=retry(step[1])).job_id)
    elif kind == "schedule":
        sim.schedule()
    elif kind in ("start", "end") and live:
        launch = live[step[1] % len(live)]
        if kind == "end" and sim.state.jobs[launch.job_id].status is JobStatus.STARTING:
            sim.start(launch)  # an exit code means its process ran: the agent reports the start
        if kind == "start" or sim.state.jobs[launch.job_id].status in ACTIVE:
            sim.start(launch) if kind == "start" else sim.end(launch, step[2])
    elif kind == "terminate" and ids:
        sim.do(ev.TerminateJob, job_id=ids[step[1] % len(ids)], reason="stop")
    elif kind == "lose":
        sim.do(ev.NodeLost, node=f"local-n{step[1]}", reason="lost")
    elif kind == "rejoin":
        node = sim.state.nodes[f"local-n{step[1]}"]
        sim.do(
            ev.NodeJoined,
            node=node.name,
            ce="local",
            capacity=node.capacity,
            known_attempts=tuple(node.attempts),
        )
    elif kind == "update":
        with contextlib.suppress(ValidationError):  # below what is in use: nothing changes
            sim.do(ev.UpdateConsumableResource, ref="matlab", operation=step[1], quantity=step[2])
    elif kind == "restart":
        sim.restart()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["REPLENISHABLE", "NON_REPLENISHABLE"]), st.lists(op, max_size=80))
def test_in_use_never_exceeds_the_total_over_random_histories(
    kind: str, steps: list[tuple[Any, ...]]
) -> None:
    """check_invariants after every step holds in-use to the live attempts' sum and to the
    total (single jobs and 2-node gangs, ends of every kind, retries, restarts); at the end,
    once every attempt is over, every REPLENISHABLE unit is back."""
    sim = licensed(total=3, kind=kind)
    ids: list[str] = []
    for step_ in steps:
        _apply(sim, step_, ids)
    while live := _live(sim):  # ending a gang's node may launch its main node (the barrier)
        for launch in live:
            sim.end(launch, 1)
    for node in sim.state.nodes.values():
        assert not node.attempts
    resource = sim.state.consumables["matlab"]
    assert resource.in_use == 0
    assert resource.total >= 0


def test_a_node_override_changes_what_its_nodes_take() -> None:
    sim = licensed(total=4, nodes=4)
    spec = JobSpec(command=("mpirun", "app"), consumables=(("matlab", 1),))
    sim.gang_definition(nodes=3, ranges=(NodeRange(0, 2, spec, True),))
    arn = sim.state.consumables["matlab"].arn
    with pytest.raises(ValidationError) as refused:
        sim.submit_gang(
            node_overrides=ev.NodeOverrides(
                ranges=(ev.NodeRangeOverride(0, 0, consumables=(("x", 1),)),)
            )
        )
    assert refused.value.field == (
        "nodeOverrides.nodePropertyOverrides[0].consumableResourcePropertiesOverride."
        "consumableResourceList[0].consumableResource"
    )
    gang = sim.submit_gang(
        node_overrides=ev.NodeOverrides(
            ranges=(ev.NodeRangeOverride(1, 2, consumables=((arn, 2),)),)
        )
    )
    assert explain(sim.state, gang) == (
        'waiting for consumable resource "matlab": needs 5, more than its total 4; it waits '
        "until the total is raised"
    )
    sim.do(ev.UpdateConsumableResource, ref="matlab", operation="ADD", quantity=1)
    sim.schedule()
    assert gang.status is JobStatus.STARTING
    assert [sim.node(gang, i).spec.consumables for i in range(3)] == [
        (("matlab", 1),),
        (("matlab", 2),),
        (("matlab", 2),),
    ]
    assert sim.state.consumables["matlab"].in_use == 5
    with pytest.raises(ValidationError, match="per node range"):
        sim.submit_gang(consumables=(("matlab", 1),))


def test_a_time_limit_action_cancels_a_job_waiting_too_long_for_a_license() -> None:
    sim = licensed(total=0)
    action = TimeLimitAction(reason="waiting for consumable resource", max_time_s=600)
    sim.do(ev.UpdateJobQueue, ref="q", time_limit_actions=(action,))
    job = sim.submit(definition="m")
    sim.do(ev.Tick)
    sim.now += 601_000
    sim.do(ev.Tick)
    assert job.status is JobStatus.FAILED
    assert "waiting for consumable resource" in (job.status_reason or "")


def test_the_jobs_needing_a_resource_are_indexed_from_submission_to_removal() -> None:
    """ListJobsByConsumableResource reads ``State.needing``, not every job: an array's parent
    and children, a gang by its parent only, in submission order; through a restart and the
    removal of finished jobs (the invariants check the index after every step)."""
    sim = licensed(total=3, nodes=4)
    sim.do(ev.CreateConsumableResource, name="other", total=1)
    plain = sim.submit(definition="d")
    single = sim.submit(definition="m")
    array = sim.submit(definition="m", array_size=2)
    spec = JobSpec(command=("mpirun", "app"), consumables=(("matlab", 1),))
    sim.gang_definition(nodes=2, ranges=(NodeRange(0, 1, spec),))
    gang = sim.submit_gang()
    sim.submit(definition="m", consumables=(("other", 1),))
    expected = [single.job_id, array.job_id, f"{array.job_id}:0", f"{array.job_id}:1", gang.job_id]
    assert [j.job_id for j in jobs_needing(sim.state, "matlab")][:5] == expected
    assert len(jobs_needing(sim.state, "other")) == 1
    assert plain.job_id not in {k[2] for keys in sim.state.needing.values() for k in keys}
    sim.restart()
    assert [j.job_id for j in jobs_needing(sim.state, "matlab")][:5] == expected
    sim.run_all()
    sim.now += 10_000
    sim.do(ev.Tick, retention_ms=5_000)
    left = {k[2] for keys in sim.state.needing.values() for k in keys}
    assert left == {j.job_id for j in sim.state.jobs.values() if j.node_index is None} - {
        plain.job_id
    }
    assert single.job_id not in left and array.job_id not in left
