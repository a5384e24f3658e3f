"""The head's timeout backstop: an attempt its agent failed to kill is killed 30 s after its
timeout, once, whether it started before or after the backstop's heap was built, and after a
restart; an attempt that ended, or one without a timeout, never is."""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.commands import KillAttempt
from hpcbatch.core.retry import TIMEOUT_REASON
from tests.core.sim import Sim, retry


def kills(sim: Sim) -> list[str]:
    return [c.attempt_id for c in sim.do(ev.Tick) if isinstance(c, KillAttempt)]


def test_an_attempt_started_after_the_first_tick_is_killed_once_after_the_grace() -> None:
    sim = Sim().cluster()
    assert kills(sim) == []  # the backstop has looked at the cluster: nothing runs
    job = sim.submit(timeout_s=60)
    untimed = sim.submit()
    first, second = sim.schedule()
    sim.start(first)
    sim.start(second)
    sim.now += 60_000 + 30_000
    assert kills(sim) == []  # at the deadline, not past it
    sim.now += 1
    timed = first if first.job_id == job.job_id else second
    assert kills(sim) == [timed.attempt_id]
    assert job.kill_reason == TIMEOUT_REASON
    sim.now += 60_000
    assert kills(sim) == []  # being killed: not killed again
    assert untimed.kill_reason is None


def test_an_attempt_that_ended_is_not_killed() -> None:
    sim = Sim().cluster()
    kills(sim)
    sim.submit(timeout_s=60)
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.now += 10_000
    sim.end(launch)
    sim.now += 200_000
    assert kills(sim) == []


def test_a_retry_is_timed_from_its_own_start() -> None:
    sim = Sim().cluster()
    kills(sim)
    job = sim.submit(timeout_s=60, retry=retry(2))
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.now += 50_000
    sim.end(launch, 1)
    (again,) = sim.schedule()
    sim.start(again)
    sim.now += 60_000 + 30_000  # past the first attempt's deadline, not the retry's
    assert kills(sim) == []
    sim.now += 1
    assert kills(sim) == [again.attempt_id]
    assert job.attempts[-1].number == 2


def test_after_a_restart_the_backstop_finds_the_running_attempts() -> None:
    sim = Sim().cluster()
    kills(sim)
    sim.submit(timeout_s=60)
    (launch,) = sim.schedule()
    sim.start(launch)
    sim.restart()
    sim.now += 90_001
    assert kills(sim) == [launch.attempt_id]
