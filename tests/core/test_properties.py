"""Safety properties over random histories (hypothesis).

Whatever happens: no node is over-committed and no GPU is held twice (check_invariants after every
step); no job starts before its dependencies succeed; a finished job never changes status again;
queue order holds except for placements recorded as backfill. And each scheduling pass keeps EASY
backfill's promise itself (``backfill_promise``): over random workloads in several queues of
different priorities on two compute environments, no placement delays a reservation's start, no
node or GPU is over-allocated by a plan, and every RUNNABLE job then has a reason (``explain``).
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.explain import explain
from hpcbatch.core.model import (
    TERMINAL,
    Dependency,
    Gpu,
    Job,
    JobSpec,
    JobStatus,
    NodeRange,
    Resources,
)
from hpcbatch.core.scheduler import schedule
from hpcbatch.core.state import runnable_key
from tests.core.backfill_promise import check_pass
from tests.core.sim import Sim, node_gpus, retry

submit = st.tuples(
    st.just("submit"),
    st.integers(1, 5),
    st.integers(0, 2),
    st.integers(0, 3),
    st.sampled_from([None, None, 2, 3]),
    st.integers(1, 3),
    st.sampled_from([None, 60, 600]),
    st.integers(0, 3),
)
op = st.one_of(
    submit,
    submit,
    submit,
    st.tuples(st.just("end"), st.integers(0, 50), st.sampled_from([0, 0, 0, 1])),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("start"), st.integers(0, 50)),
    st.tuples(st.just("end"), st.integers(0, 50), st.sampled_from([0, 0, 1, 137])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("terminate"), st.integers(0, 50)),
    st.tuples(st.just("lose"), st.integers(0, 2)),
    st.tuples(st.just("rejoin"), st.integers(0, 2)),
    st.tuples(st.just("drain"), st.integers(0, 2)),
    st.tuples(st.just("down"), st.integers(0, 2)),
    st.tuples(st.just("forge"), st.integers(0, 50), st.integers(1, 2)),
    st.tuples(st.just("gpu_gone"), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just("gpu_back"), st.integers(0, 2)),
    st.tuples(st.just("restart")),
)


def _deps_succeeded(sim: Sim, job: Job) -> bool:
    ids = [d.job_id for d in job.depends_on if d.job_id]
    if job.parent_id is not None:
        parent = sim.state.jobs[job.parent_id]
        ids = [d.job_id for d in parent.depends_on if d.job_id and d.dep_type is None]
    return all(sim.state.jobs[i].status is JobStatus.SUCCEEDED for i in ids if i in sim.state.jobs)


def _check_order(sim: Sim) -> None:
    """Every placement not marked backfill has no blocked, placeable job ahead of it, and the
    pass keeps its promises (``backfill_promise``)."""
    order = sorted(
        (-sim.state.queues[j.queue].priority, sim.state.queues[j.queue].seq, runnable_key(j), j)
        for j in sim.state.jobs.values()
        if j.status is JobStatus.RUNNABLE
    )
    plan = schedule(sim.state, sim.now)
    check_pass(sim.state, plan, sim.now)
    placed = {p.job_id: p for p in plan.placements}
    capacity = [n.capacity for n in sim.state.nodes.values() if n.schedulable]
    blocked_ahead = False
    for *_, job in order:
        p = placed.get(job.job_id)
        if p is None:
            if any(job.spec.resources.fits_in(c) for c in capacity):
                blocked_ahead = True
        elif blocked_ahead:
            assert p.backfill, f"{job.job_id} jumped the queue without being recorded as backfill"
    sim.plans.append(plan)
    sim.do(ev.PlanApplied, plan=plan)


def _apply(sim: Sim, step: tuple[Any, ...], jobs: list[Job]) -> None:
    kind = step[0]
    live = [
        launch
        for launch in sim.launched
        if (job := sim.state.jobs.get(launch.job_id)) is not None
        and job.current is not None
        and launch.attempt_id.endswith(f"/{job.current.number}")
    ]
    if kind == "submit":
        _, vcpus, gpus, dep, array, attempts, timeout, dep2 = step
        picks = {jobs[-d].job_id for d in (dep, dep2) if d and len(jobs) >= d}
        depends = tuple(Dependency(i) for i in sorted(picks))
        jobs.append(
            sim.submit(
                vcpus=vcpus,
                gpus=gpus,
                depends_on=depends,
                array_size=array,
                retry=retry(attempts),
                timeout_s=timeout,
            )
        )
    elif kind == "schedule":
        _check_order(sim)
    elif kind in ("start", "end") and live:
        launch = live[step[1] % len(live)]
        if kind == "start":
            sim.start(launch)
        else:
            sim.end(launch, step[2])
    elif kind == "forge" and live:
        _forge(sim, live[step[1] % len(live)], step[2])
    elif kind in ("cancel", "terminate") and jobs:
        target = jobs[step[1] % len(jobs)]
        event = ev.CancelJob if kind == "cancel" else ev.TerminateJob
        sim.do(event, job_id=target.job_id, reason=kind)
    elif kind == "restart":
        sim.restart()
    elif kind in ("gpu_gone", "gpu_back"):
        name = f"local-n{step[1]}"
        gone = sim.gpus_gone.setdefault(name, set())
        if kind == "gpu_gone":
            gone.add(f"GPU-{name}-{step[2]}")
        else:
            gone.clear()
        sim.do(ev.NodeGpusChanged, node=name, gpus=_present(sim, name))
    elif kind in ("lose", "rejoin", "drain", "down"):
        name = f"local-n{step[1]}"
        node = sim.state.nodes[name]
        if kind == "lose":
            sim.do(ev.NodeLost, node=name, reason="lost")
        elif kind == "down":
            sim.do(ev.NodeDown, node=name, reason="silent")
        elif kind == "rejoin":
            sim.do(
                ev.NodeJoined,
                node=name,
                ce="local",
                capacity=node.capacity,
                gpus=_present(sim, name),
                known_attempts=tuple(node.attempts),
            )
        elif node.state.value == "ONLINE":
            sim.do(ev.DrainNode, node=name, reason="admin")


def _present(sim: Sim, name: str) -> tuple[Gpu, ...]:
    """What the node's agent would list: its two boards less those fallen off the bus."""
    gone = sim.gpus_gone.get(name, set())
    return tuple(gpu for gpu in node_gpus(name, 2) if gpu.id not in gone)


def _check_gpus_held_once(sim: Sim) -> None:
    """No GPU is held by two live attempts, on any node, and none is held out of thin air."""
    held: dict[str, str] = {}
    for job in sim.state.jobs.values():
        if job.status in (JobStatus.STARTING, JobStatus.RUNNING) and job.attempts:
            attempt = job.attempts[-1]
            known = {gpu.id for gpu in sim.state.nodes[attempt.node].gpus}
            for gpu in attempt.gpus:
                assert gpu not in held, f"{gpu} held by {held.get(gpu)} and {job.job_id}"
                assert gpu in known, f"{job.job_id} holds {gpu}, unknown to {attempt.node}"
                held[gpu] = job.job_id


def _forge(sim: Sim, launch: LaunchAttempt, shift: int) -> None:
    """Another node reports this live attempt started and failed: nothing may change."""
    job = sim.state.jobs[launch.job_id]
    before = (job.status, copy.copy(job.attempts[-1]), set(sim.state.nodes[launch.node].attempts))
    index = (int(launch.node.rsplit("n", 1)[1]) + shift) % 3
    other = f"local-n{index}"
    aid = launch.attempt_id
    sim.do(ev.AttemptStarted, node=other, attempt_id=aid, started_at=sim.now, pid=9)
    sim.do(ev.AttemptEnded, node=other, attempt_id=aid, stopped_at=sim.now, exit_code=1)
    assert (job.status, job.attempts[-1], sim.state.nodes[launch.node].attempts) == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=30, max_size=120))
def test_safety_properties_hold_over_random_histories(steps: list[tuple[Any, ...]]) -> None:
    sim = Sim().cluster(nodes=3, vcpus=4, gpus=2)
    jobs: list[Job] = []
    finished: dict[str, JobStatus] = {}
    for step_ in steps:
        seen = len(sim.launched)
        _apply(sim, step_, jobs)
        _check_gpus_held_once(sim)
        for launch in sim.launched[seen:]:
            assert _deps_succeeded(sim, sim.state.jobs[launch.job_id])
        for job in sim.state.jobs.values():
            if job.status in (JobStatus.RUNNABLE, JobStatus.STARTING, JobStatus.RUNNING):
                assert _deps_succeeded(sim, job), f"{job.job_id} {job.status} before its deps"
        for job_id, status in finished.items():
            if job_id in sim.state.jobs:
                assert sim.state.jobs[job_id].status is status, f"{job_id} left {status}"
        finished.update(
            {j.job_id: j.status for j in sim.state.jobs.values() if j.status in TERMINAL}
        )


gang_op = st.one_of(
    st.tuples(st.just("gang"), st.integers(1, 3), st.sampled_from([None, 60]), st.integers(1, 2)),
    st.tuples(st.just("small"), st.integers(1, 4), st.sampled_from([None, 60, 600])),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("start"), st.integers(0, 50)),
    st.tuples(st.just("start"), st.integers(0, 50)),
    st.tuples(st.just("end"), st.integers(0, 50), st.sampled_from([0, 0, 1, 137])),
    st.tuples(st.just("terminate"), st.integers(0, 50)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("lose"), st.integers(0, 3)),
    st.tuples(st.just("rejoin"), st.integers(0, 3)),
    st.tuples(st.just("tick"), st.integers(0, 200)),
)


def _live(sim: Sim) -> list[LaunchAttempt]:
    return [
        launch
        for launch in sim.launched
        if (job := sim.state.jobs.get(launch.job_id)) is not None
        and job.current is not None
        and launch.attempt_id.endswith(f"/{job.current.number}")
    ]


def _apply_gang_step(sim: Sim, step: tuple[Any, ...], jobs: list[Job]) -> None:
    kind, live = step[0], _live(sim)
    if kind == "gang":
        jobs.append(
            sim.submit_gang(definition=f"g{step[1]}", timeout_s=step[2], retry=retry(step[3]))
        )
    elif kind == "small":
        jobs.append(sim.submit(vcpus=step[1], timeout_s=step[2]))
    elif kind == "schedule":
        sim.schedule()
        _check_plan(sim)
    elif kind in ("start", "end") and live:
        launch = live[step[1] % len(live)]
        if kind == "start":
            sim.start(launch)
        else:
            sim.end(launch, step[2])
    elif kind in ("terminate", "cancel") and jobs:
        event = ev.TerminateJob if kind == "terminate" else ev.CancelJob
        sim.do(event, job_id=jobs[step[1] % len(jobs)].job_id, reason=kind)
    elif kind in ("lose", "rejoin"):
        name = f"local-n{step[1]}"
        node = sim.state.nodes[name]
        if kind == "lose":
            sim.do(ev.NodeLost, node=name, reason="lost")
        else:
            known = tuple(node.attempts)
            sim.do(
                ev.NodeJoined, node=name, ce="local", capacity=node.capacity, known_attempts=known
            )
    elif kind == "tick":
        sim.now += step[1] * 1000
        sim.do(ev.Tick)


def _check_plan(sim: Sim) -> None:
    """The scheduler proposes whole gangs on distinct nodes, never a part of one."""
    gangs: dict[str, list[str]] = {}
    for p in sim.plans[-1].placements:
        if p.gang is not None:
            gangs.setdefault(p.gang, []).append(p.node)
    for gang, hosts in gangs.items():
        shape = sim.state.jobs[gang].multinode
        assert shape is not None and len(hosts) == shape.num_nodes, f"{gang} proposed in part"
        assert len(set(hosts)) == len(hosts), f"{gang} proposed twice on one node: {hosts}"


def _check_gangs(sim: Sim, placed_before: set[str]) -> None:
    """All or nothing; node jobs start only inside a placed gang; a main node only once every
    other node of its gang has run."""
    for parent in sim.state.jobs.values():
        if parent.multinode is None:
            continue
        nodes = [sim.node(parent, i) for i in range(parent.multinode.num_nodes)]
        active = [n for n in nodes if n.status in (JobStatus.STARTING, JobStatus.RUNNING)]
        if parent.status in (JobStatus.STARTING, JobStatus.RUNNING):
            assert len({len(n.attempts) for n in nodes}) == 1, "a gang placed in part"
            hosts = [n.attempts[-1].node for n in active]
            assert len(hosts) == len(set(hosts)), "two nodes of a gang on one host"
        else:
            for n in active:  # only stragglers of a decided gang, being stopped
                assert n.kill_reason is not None, f"{n.job_id} live outside its gang"
        main = nodes[parent.multinode.main_node]
        if main.job_id in placed_before and main.attempts and main.attempts[-1].started_at:
            others = [n for n in nodes if n is not main]
            assert all(n.attempts and n.attempts[-1].started_at for n in others)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(gang_op, min_size=20, max_size=100))
def test_gangs_are_all_or_nothing_and_never_share_a_node(steps: list[tuple[Any, ...]]) -> None:
    sim = Sim().cluster(nodes=4, vcpus=4)
    for size in (1, 2):
        sim.gang_definition(name=f"g{size}", nodes=size)
    main = JobSpec(command=("m",), resources=Resources(2000, 512, 0))
    worker = JobSpec(command=("w",), resources=Resources(1000, 512, 0))
    sim.gang_definition(name="g3", nodes=3, ranges=(NodeRange(0, 0, main), NodeRange(1, 2, worker)))
    jobs: list[Job] = []
    for step_ in steps:
        seen = len(sim.launched)
        _apply_gang_step(sim, step_, jobs)
        for launch in sim.launched[seen:]:
            job = sim.state.jobs[launch.job_id]
            if job.parent_id is not None:
                parent = sim.state.jobs[job.parent_id]
                assert parent.status in (JobStatus.STARTING, JobStatus.RUNNING)
        _check_gangs(sim, {launch.job_id for launch in sim.launched})


# Several queues over two compute environments: "a" (3 nodes of 4 vCPUs and 2 GPUs) and "b"
# (1 node of 8 vCPUs). Queue names index QUEUES; "wide" jobs of 5-8 vCPUs fit only in "b".
QUEUES = ("hi", "mid", "lo", "bonly")
promise_submit = st.tuples(
    st.just("submit"),
    st.integers(1, 6),  # that many alike, in one burst
    st.integers(0, len(QUEUES) - 1),
    st.sampled_from([1, 1, 1, 2, 3, 4, 4, 6, 8]),
    st.sampled_from([512, 512, 2048, 6144]),
    st.sampled_from([0, 0, 0, 1, 2]),
    st.integers(0, 3),  # schedulingPriority
    st.sampled_from([None, 60, 120, 600, 600, 3600]),
    st.sampled_from([0, 0, 0, 0, 1, 3]),  # on the job submitted that many jobs ago (0: none)
    st.sampled_from([None, None, None, 2, 3]),
)
promise_op = st.one_of(
    *[promise_submit] * 5,
    *[st.tuples(st.just("schedule"))] * 3,
    st.tuples(st.just("start")),
    st.tuples(st.just("end"), st.integers(0, 50), st.sampled_from([0, 0, 0, 1]), st.integers(1, 4)),
    st.tuples(st.just("end"), st.integers(0, 50), st.sampled_from([0, 0, 0, 1]), st.integers(1, 4)),
    st.tuples(st.just("tick"), st.sampled_from([1, 30, 70, 200])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("node"), st.sampled_from(["lose", "rejoin"]), st.integers(0, 3)),
)
NODES = ("a-n0", "a-n1", "a-n2", "b-n0")


def _promise_cluster() -> Sim:
    sim = Sim().cluster(nodes=3, vcpus=4, gpus=2, ce="a", queue="hi", priority=5)
    sim.cluster(nodes=1, vcpus=8, ce="b", queue="bonly", priority=1)
    sim.do(ev.CreateJobQueue, name="mid", priority=2, ce_order=((1, "b"), (2, "a")))
    sim.do(ev.CreateJobQueue, name="lo", priority=2, ce_order=((1, "a"), (2, "b")))
    return sim


def _promise_step(sim: Sim, step: tuple[Any, ...], jobs: list[Job]) -> None:
    kind, live = step[0], _live(sim)
    if kind == "submit":
        _, count, queue, vcpus, memory, gpus, priority, timeout, dep, array = step
        depends = (Dependency(jobs[-dep].job_id),) if dep and len(jobs) >= dep else ()
        for _ in range(count):
            job = sim.submit(
                queue=QUEUES[queue],
                vcpus=vcpus,
                memory=memory,
                gpus=gpus,
                priority=priority,
                timeout_s=timeout,
                depends_on=depends,
                array_size=array,
            )
            jobs.append(job)
    elif kind == "schedule":
        plan = schedule(sim.state, sim.now)
        check_pass(sim.state, plan, sim.now)
        sim.plans.append(plan)
        sim.do(ev.PlanApplied, plan=plan)
        for job in sim.state.jobs.values():
            if job.status is JobStatus.RUNNABLE:
                reason = explain(sim.state, job, plan.reservations)
                assert reason and "None" not in reason, f"{job.job_id} waits for no reason"
    elif kind == "start":
        for launch in live:  # every launch sent so far starts (some time after its pass)
            if sim.state.jobs[launch.job_id].attempts[-1].started_at is None:
                sim.start(launch)
    elif kind == "end":
        for k in range(step[3]):  # a few attempts end, picked around the list
            if live := _live(sim):
                sim.end(live[(step[1] + 7 * k) % len(live)], step[2])
    elif kind == "tick":
        sim.now += step[1] * 1000
        sim.do(ev.Tick)
    elif kind == "cancel" and jobs:
        sim.do(ev.CancelJob, job_id=jobs[step[1] % len(jobs)].job_id, reason="cancel")
    elif kind == "node" and step[1] == "lose":
        sim.do(ev.NodeLost, node=NODES[step[2]], reason="lost")
    elif kind == "node":
        node = sim.state.nodes[NODES[step[2]]]
        sim.do(
            ev.NodeJoined,
            node=node.name,
            ce=node.ce,
            capacity=node.capacity,
            gpus=node.gpus,
            known_attempts=tuple(node.attempts),
        )


# A job reserved on b-n0 for when a 6 GiB job ends leaves 5 vCPUs spare then: only one of two
# 3-vCPU jobs behind it, which would outlive that time, may backfill (random runs find it rarely).
SPARE_SHRINKS = [
    ("submit", 1, 3, 1, 6144, 0, 0, 60, 0, None),
    ("schedule",),
    ("start",),
    ("submit", 1, 3, 3, 6144, 0, 0, None, 0, None),
    ("submit", 2, 3, 3, 512, 0, 0, 600, 0, None),
    ("schedule",),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(promise_op, min_size=30, max_size=150))
@example(SPARE_SHRINKS)
def test_no_pass_delays_a_reservation_over_allocates_or_leaves_a_job_without_reason(
    steps: list[tuple[Any, ...]],
) -> None:
    """EASY backfill's promise itself, over random workloads in four queues of different
    priorities on two compute environments, with job priorities, timeouts, dependencies,
    arrays, GPUs, time passing and nodes lost: each pass is checked by ``backfill_promise``
    (no placement delays a first blocked job's earliest start, every reservation keeps its room,
    no node or GPU is over-allocated), and every RUNNABLE job then has a reason."""
    sim = _promise_cluster()
    jobs: list[Job] = []
    for step_ in steps:
        _promise_step(sim, step_, jobs)
