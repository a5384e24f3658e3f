"""Quota-share safety over random histories (hypothesis): a preemption never stops a job
within its own share's quota (unless in-share preemption by a higher schedulingPriority);
no share runs over its quota without borrowing rights, and borrowing stays within the borrow
limit (``check_invariants`` after every step); a preempted job is requeued, never failed."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.model import JobStatus
from hpcbatch.core.quotas import share_uses
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim, retry

STRATEGIES = ("RESERVE", "LEND", "LEND_AND_BORROW")
share_config = st.tuples(
    st.integers(1, 4),
    st.sampled_from(STRATEGIES + ("LEND_AND_BORROW", "LEND")),  # more lending and borrowing
    st.sampled_from([-1, -1, 0, 50, 100]),
    st.booleans(),
)
op = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 2), st.integers(1, 3), st.integers(0, 2)),
    st.tuples(st.just("submit"), st.integers(0, 2), st.integers(1, 2), st.integers(0, 2)),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("schedule")),
    st.tuples(st.just("start"), st.integers(0, 40)),
    st.tuples(st.just("end"), st.integers(0, 40)),
    st.tuples(st.just("end_killed"), st.integers(0, 40)),
)


def _apply_checked(sim: Sim) -> None:
    plan = schedule(sim.state, sim.now)
    uses = share_uses(sim.state)
    borrowers = {r.job.job_id for e in uses.values() for r in e.borrowers}
    for p in plan.preemptions:
        victim, waiting = sim.state.jobs[p.job_id], sim.state.jobs[p.for_job]
        share = sim.state.quota_shares[f"q/{victim.share}"]
        in_share = (
            share.in_share_preemption
            and victim.share == waiting.share
            and victim.spec.priority < waiting.spec.priority
        )
        assert p.job_id in borrowers or in_share, f"{p} stops a job within its quota"
        assert waiting.status is JobStatus.RUNNABLE
    sim.plans.append(plan)
    sim.do(ev.PlanApplied, plan=plan)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shares=st.lists(share_config, min_size=2, max_size=3),
    ops=st.lists(op, min_size=15, max_size=60),
)
def test_quota_shares_hold_over_random_histories(shares: list[Any], ops: list[Any]) -> None:
    sim = Sim().cluster(nodes=1, vcpus=4)
    for i, (quota, strategy, borrow, in_share) in enumerate(shares):
        sim.do(
            ev.CreateQuotaShare,
            name=f"s{i}",
            queue="q",
            limits=(("VCPU", quota),),
            strategy=strategy,
            borrow_limit=borrow if strategy == "LEND_AND_BORROW" else None,
            in_share_preemption=in_share,
        )
    live: dict[str, LaunchAttempt] = {}
    for step in ops:
        sim.now += 1000
        if step[0] == "submit":
            _, share, vcpus, priority = step
            sim.submit(
                share_identifier=f"s{share % len(shares)}",
                vcpus=vcpus,
                priority=priority,
                retry=retry(1),
            )
        elif step[0] == "schedule":
            before = len(sim.launched)
            _apply_checked(sim)
            for launch in sim.launched[before:]:
                live[launch.attempt_id] = launch
        elif step[0] == "end_killed":
            killed = [x for x in live.values() if sim.state.jobs[x.job_id].kill_reason]
            if killed:
                launch = killed[step[1] % len(killed)]
                sim.end(launch, exit_code=None, reason=sim.state.jobs[launch.job_id].kill_reason)
                del live[launch.attempt_id]
                assert sim.state.jobs[launch.job_id].status is JobStatus.RUNNABLE
        elif live:
            launch = sorted(live.values(), key=lambda x: x.attempt_id)[step[1] % len(live)]
            job = sim.state.jobs[launch.job_id]
            if step[0] == "start":
                sim.start(launch)
                continue
            kill = job.kill_reason
            sim.end(launch, exit_code=None if kill else 0, reason=kill)
            del live[launch.attempt_id]
            if kill is not None:
                assert job.status is JobStatus.RUNNABLE, "a preempted job is requeued"
