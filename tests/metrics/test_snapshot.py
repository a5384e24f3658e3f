"""The snapshot's queue depth and wait reasons, from a State built through the real core."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.model import Dependency, JobSpec, NodeState, Resources
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import State
from hpcbatch.core.step import step
from hpcbatch.metrics import snapshot
from hpcbatch.metrics.snapshot import build_snapshot


def cluster() -> State:
    state = State()
    step(
        state,
        ev.CreateComputeEnvironment(cause="t", now=1, name="ce", ce_type="MANAGED", kind="LOCAL"),
    )
    for name in ("n1", "n2"):
        capacity = Resources(2000, 4096, 0)
        step(state, ev.NodeJoined(cause="t", now=1, node=name, ce="ce", capacity=capacity))
    for queue in ("q", "off"):
        step(
            state,
            ev.CreateJobQueue(cause="t", now=1, name=queue, priority=1, ce_order=((1, "ce"),)),
        )
    spec = JobSpec(command=("true",))
    step(
        state, ev.RegisterJobDefinition(cause="t", now=1, name="d", def_type="container", spec=spec)
    )
    return state


def submit(state: State, job_id: str, queue: str = "q", **fields: object) -> None:
    step(
        state,
        ev.SubmitJob(
            cause="t", now=1, job_id=job_id, name=job_id, queue=queue, definition="d", **fields
        ),
    )  # type: ignore[arg-type]


def place(state: State) -> None:
    step(state, ev.PlanApplied(cause="s", now=2, plan=schedule(state, 2, 200)))


def test_depth_counts_children_not_their_parent_and_reasons_sum_to_runnable() -> None:
    state = cluster()
    submit(state, "arr", array_size=10)
    submit(state, "huge", cpu_milli=64000)  # no node could ever hold it
    submit(state, "after", depends_on=(Dependency("arr"),))
    submit(state, "held", queue="off")
    step(state, ev.UpdateJobQueue(cause="t", now=1, ref="off", state="DISABLED"))
    place(state)
    s = build_snapshot(state, {}, 10)
    assert s.queue_jobs[("q", "STARTING")] == 4  # 2 nodes x 2 vCPUs
    assert s.queue_jobs[("q", "RUNNABLE")] == 7  # 6 children + huge
    assert s.queue_jobs[("q", "PENDING")] == 1  # "after"; the array's parent is not counted
    assert s.waiting[("q", "capacity")] == 6
    assert s.waiting[("q", "misconfiguration")] == 1
    assert s.waiting[("q", "dependency")] == 1
    assert s.waiting[("off", "queue_disabled")] == 1
    assert s.ces["ce"][:2] == (4.0, 4.0)
    assert s.node_states[("ce", "ONLINE")] == 2


def test_jobs_past_the_classified_ones_count_as_capacity(monkeypatch: object) -> None:
    state = cluster()
    submit(state, "arr", array_size=50)
    place(state)
    state.nodes["n1"].state = NodeState.DOWN
    state.nodes["n2"].state = NodeState.DOWN
    setattr(snapshot, "CLASSIFIED_PER_QUEUE", 10)  # noqa: B010 - restored below
    try:
        s = build_snapshot(state, {}, 10)
    finally:
        setattr(snapshot, "CLASSIFIED_PER_QUEUE", 100)  # noqa: B010
    assert s.waiting[("q", "node_unavailable")] == 10
    assert s.waiting[("q", "capacity")] == 36
    assert s.node_states[("ce", "DOWN")] == 2


def test_classify_knows_explains_classes() -> None:
    assert snapshot.classify("queue disabled: q is DISABLED; ...") == "queue_disabled"
    assert snapshot.classify("no ENABLED compute environment in queue q (ce)") == "ce_disabled"
    assert (
        snapshot.classify("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - needs") == "misconfiguration"
    )
    assert snapshot.classify("waiting for nodes: every node ...") == "node_unavailable"
    assert snapshot.classify("reserved: next to start on n1") == "capacity"
    assert snapshot.classify("waiting for capacity: 3 jobs ahead") == "capacity"
    assert snapshot.classify(None) == "other"


def test_jobs_waiting_for_a_license_count_as_consumable() -> None:
    state = cluster()
    step(state, ev.CreateConsumableResource(cause="t", now=1, name="lic", total=1))
    for i in range(3):
        submit(state, f"l{i}", consumables=(("lic", 1),))
    submit(state, "free")  # the same resources, no license: started
    place(state)
    s = build_snapshot(state, {}, 10)
    assert s.waiting[("q", "consumable")] == 2
    assert s.waiting[("q", "capacity")] == 0
    assert s.queue_jobs[("q", "STARTING")] == 2
    assert snapshot.classify('waiting for consumable resource "lic": needs 1') == "consumable"
