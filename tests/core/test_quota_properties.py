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
    st.tuples(st.just("gang"), st.integers(0, 2)),
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
    sim = Sim().cluster(nodes=2, vcpus=2)
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
    sim.gang_definition(nodes=2, vcpus=1)
    live: dict[str, LaunchAttempt] = {}
    seen = 0
    started: set[str] = set()
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
        elif step[0] == "gang":
            sim.submit_gang(share_identifier=f"s{step[1] % len(shares)}", retry=retry(1))
        elif step[0] == "schedule":
            _apply_checked(sim)
        elif step[0] == "end_killed":
            killed = [x for x in live.values() if sim.state.jobs[x.job_id].kill_reason]
            if killed:
                _end(sim, live, killed[step[1] % len(killed)])
        elif live:
            launch = sorted(live.values(), key=lambda x: x.attempt_id)[step[1] % len(live)]
            if step[0] == "start":
                if launch.attempt_id not in started:
                    sim.start(launch)
                    started.add(launch.attempt_id)
            else:
                _end(sim, live, launch)
        for launch in sim.launched[seen:]:  # a gang's main node is launched past its barrier
            live[launch.attempt_id] = launch
        seen = len(sim.launched)
        for gone in [a for a, x in live.items() if _over(sim, x)]:
            del live[gone]


def _over(sim: Sim, launch: LaunchAttempt) -> bool:
    """The attempt ended already (a gang's node stopped without being sent)."""
    job = sim.state.jobs[launch.job_id]
    return job.current is None or f"{job.job_id}/{job.current.number}" != launch.attempt_id


def _end(sim: Sim, live: dict[str, LaunchAttempt], launch: LaunchAttempt) -> None:
    job = sim.state.jobs[launch.job_id]
    kill = job.kill_reason
    sim.end(launch, exit_code=None if kill else 0, reason=kill)
    del live[launch.attempt_id]
    top = sim.state.jobs[job.parent_id] if job.node_index is not None and job.parent_id else job
    if kill is not None and kill.startswith("Preempted: ") and not top.is_terminated:
        assert top.status is JobStatus.RUNNABLE, "a preempted job is requeued"
