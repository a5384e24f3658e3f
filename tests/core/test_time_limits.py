"""jobStateTimeLimitActions: a queue cancels jobs RUNNABLE too long for a given reason."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobStatus, TimeLimitAction
from hpcbatch.core.time_limits import CHECK_EVERY_MS
from tests.core.sim import Sim

MISCONF = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"
CANCELLED = (
    "Cancelled by the job queue's jobStateTimeLimitActions: RUNNABLE with reason "
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT for longer than 600 seconds"
)


def _sim(*actions: TimeLimitAction) -> Sim:
    sim = Sim().cluster(nodes=1, vcpus=2)
    sim.do(ev.UpdateJobQueue, ref="q", time_limit_actions=actions)
    return sim


def _tick(sim: Sim, after_s: float) -> None:
    sim.now += int(after_s * 1000)
    sim.do(ev.Tick)


def test_a_job_no_node_can_hold_is_cancelled_after_max_time_with_the_reason() -> None:
    sim = _sim(TimeLimitAction(MISCONF, 600))
    huge = sim.submit(vcpus=64)
    waiting = sim.submit(vcpus=2)
    sim.schedule()
    queued = sim.submit(vcpus=2)  # waits for capacity, not for a misconfiguration
    _tick(sim, 0)
    _tick(sim, 599)
    assert huge.status is JobStatus.RUNNABLE
    _tick(sim, 2 + CHECK_EVERY_MS / 1000)
    assert (huge.status, huge.status_reason, huge.is_cancelled) == (
        JobStatus.FAILED,
        CANCELLED,
        True,
    )
    assert waiting.status is JobStatus.STARTING
    _tick(sim, 3600)
    assert queued.status is JobStatus.RUNNABLE


def test_the_clock_is_the_time_runnable_not_the_time_submitted() -> None:
    sim = _sim(TimeLimitAction(MISCONF, 600))
    first = sim.submit(vcpus=1)
    huge = sim.submit(vcpus=64, depends_on=(ev.Dependency(first.job_id),))
    assert huge.status is JobStatus.PENDING
    sim.now += 3_600_000
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.end(launch, 0)
    assert huge.status is JobStatus.RUNNABLE
    _tick(sim, 300)
    assert huge.status is JobStatus.RUNNABLE
    _tick(sim, 301)
    assert huge.status_reason == CANCELLED


def test_only_matching_reasons_and_only_after_the_actions_own_time() -> None:
    capacity = TimeLimitAction("waiting for capacity", 1200)
    sim = _sim(TimeLimitAction(MISCONF, 3600), capacity)
    sim.submit(vcpus=2)
    sim.schedule()
    blocked = sim.submit(vcpus=2)
    huge = sim.submit(vcpus=64)
    _tick(sim, 0)
    _tick(sim, 1201)
    assert (blocked.status, huge.status) == (JobStatus.FAILED, JobStatus.RUNNABLE)
    assert blocked.status_reason == (
        "Cancelled by the job queue's jobStateTimeLimitActions: RUNNABLE with reason "
        "waiting for capacity for longer than 1200 seconds"
    )
    _tick(sim, 2400)
    assert huge.status is JobStatus.FAILED


def test_queues_without_actions_and_cleared_actions_cancel_nothing() -> None:
    sim = _sim(TimeLimitAction(MISCONF, 600))
    sim.do(ev.UpdateJobQueue, ref="q", time_limit_actions=())
    huge = sim.submit(vcpus=64)
    _tick(sim, 0)
    _tick(sim, 86_400)
    assert huge.status is JobStatus.RUNNABLE


def test_the_actions_survive_a_restart_and_the_clock_starts_again() -> None:
    sim = _sim(TimeLimitAction(MISCONF, 600))
    huge = sim.submit(vcpus=64)
    _tick(sim, 500)
    sim.restart()
    assert sim.state.queues["q"].time_limit_actions == (TimeLimitAction(MISCONF, 600),)
    _tick(sim, 200)  # 700 s RUNNABLE, but the restarted head has seen it for 0 s
    job = sim.state.jobs[huge.job_id]
    assert job.status is JobStatus.RUNNABLE
    _tick(sim, 601)
    assert job.status_reason == CANCELLED


def test_array_children_are_cancelled_one_by_one_and_the_parent_ends() -> None:
    sim = _sim(TimeLimitAction(MISCONF, 600))
    parent = sim.submit(vcpus=64, array_size=3)
    _tick(sim, 0)
    _tick(sim, 601)
    children = [sim.state.jobs[f"{parent.job_id}:{i}"] for i in range(3)]
    assert [c.status_reason for c in children] == [CANCELLED] * 3
    assert parent.status is JobStatus.FAILED


def test_a_check_runs_at_most_every_check_interval() -> None:
    sim = _sim(TimeLimitAction(MISCONF, 600))
    huge = sim.submit(vcpus=64)
    _tick(sim, 0)
    _tick(sim, 595)
    _tick(sim, 6)  # past 600 s, but only 6 s after the last check
    assert huge.status is JobStatus.RUNNABLE
    _tick(sim, CHECK_EVERY_MS / 1000)
    assert huge.status is JobStatus.FAILED
