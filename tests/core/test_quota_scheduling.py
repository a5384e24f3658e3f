"""Quota shares in the scheduler: quotas, borrowing, preemption of borrowers, in-share
preemption, and what a preempted job's retry strategy sees."""

from __future__ import annotations

from typing import Any

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.explain import explain
from hpcbatch.core.model import Job, JobStatus
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim, retry


def shared(nodes: int = 1, vcpus: int = 4, **shares: tuple[int, str, dict[str, Any]]) -> Sim:
    sim = Sim().cluster(nodes=nodes, vcpus=vcpus)
    for name, (quota, strategy, extra) in shares.items():
        sim.do(
            ev.CreateQuotaShare,
            name=name,
            queue="q",
            strategy=strategy,
            limits=(("VCPU", quota),),
            **extra,
        )
    return sim


def ab(borrow_limit: int | None = None) -> Sim:
    """A 4-vCPU node; share a: 2 vCPUs LEND_AND_BORROW; share b: 2 vCPUs LEND."""
    extra = {} if borrow_limit is None else {"borrow_limit": borrow_limit}
    return shared(a=(2, "LEND_AND_BORROW", extra), b=(2, "LEND", {}))


def launch_of(sim: Sim, job: Job) -> LaunchAttempt:
    return [x for x in sim.launched if x.job_id == job.job_id][-1]


def run(sim: Sim) -> list[LaunchAttempt]:
    launches = sim.schedule()
    for launch in launches:
        sim.start(launch)
        sim.now += 1
    return launches


def test_a_share_runs_its_quota_and_borrows_what_lenders_leave_idle() -> None:
    sim = ab()
    jobs = [sim.submit(share_identifier="a") for _ in range(5)]
    run(sim)
    assert [j.status for j in jobs] == [JobStatus.RUNNING] * 4 + [JobStatus.RUNNABLE]


def test_the_borrow_limit_holds() -> None:
    sim = ab(borrow_limit=50)  # a may borrow 1 vCPU
    jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    assert [j.status for j in jobs].count(JobStatus.RUNNING) == 3


def test_reserve_and_lend_shares_never_borrow_and_reserve_never_lends() -> None:
    sim = shared(a=(2, "LEND_AND_BORROW", {}), r=(2, "RESERVE", {}))
    a_jobs = [sim.submit(share_identifier="a") for _ in range(3)]
    run(sim)
    assert [j.status for j in a_jobs].count(JobStatus.RUNNING) == 2  # r lends nothing
    sim2 = ab()
    b_jobs = [sim2.submit(share_identifier="b") for _ in range(3)]
    run(sim2)
    assert [j.status for j in b_jobs].count(JobStatus.RUNNING) == 2  # LEND does not borrow


def test_a_lender_gets_its_capacity_back_from_the_newest_borrower() -> None:
    sim = ab()
    a_jobs = [sim.submit(share_identifier="a", retry=retry(1)) for _ in range(4)]
    run(sim)
    assert all(j.status is JobStatus.RUNNING for j in a_jobs)
    b_job = sim.submit(share_identifier="b")
    sim.schedule()
    plan = sim.plans[-1]
    assert [p.job_id for p in plan.preemptions] == [a_jobs[3].job_id]  # one, the newest
    assert plan.preemptions[0].reason == (
        f'Preempted: quota share "b" needs its capacity back (job {b_job.job_id} waits)'
    )
    assert [k.attempt_id for k in sim.killed] == [f"{a_jobs[3].job_id}/1"]
    # The kill is under way: the next pass asks for no more.
    sim.schedule()
    assert sim.plans[-1].preemptions == ()
    assert len(sim.killed) == 1
    # The borrower ends as killed; it is requeued though its strategy allows 1 attempt.
    sim.end(launch_of(sim, a_jobs[3]), exit_code=None, reason=sim.killed[0].reason)
    assert a_jobs[3].status is JobStatus.RUNNABLE
    launches = run(sim)
    assert [x.job_id for x in launches] == [b_job.job_id]  # the lender first, not the borrower
    assert a_jobs[3].status is JobStatus.RUNNABLE
    assert all(j.status is JobStatus.RUNNING for j in a_jobs[:3])  # in-quota: never preempted
    # b's job ends: a borrows again and its requeued job finishes with attempt 2.
    sim.end(launch_of(sim, b_job))
    launches = run(sim)
    assert [x.job_id for x in launches] == [a_jobs[3].job_id]
    sim.end(launches[0])
    assert a_jobs[3].status is JobStatus.SUCCEEDED
    assert len(a_jobs[3].attempts) == 2


def test_only_borrowers_are_preempted_and_the_fewest_needed() -> None:
    sim = ab()
    a_jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    big = sim.submit(share_identifier="b", vcpus=2)
    sim.schedule()
    victims = [p.job_id for p in sim.plans[-1].preemptions]
    assert victims == [a_jobs[3].job_id, a_jobs[2].job_id]  # newest first
    assert not {a_jobs[0].job_id, a_jobs[1].job_id} & set(victims)
    assert big.status is JobStatus.RUNNABLE


def test_terminate_wins_over_a_preemption_requeue() -> None:
    sim = ab()
    a_jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    sim.submit(share_identifier="b")
    sim.schedule()
    preempted = a_jobs[3].kill_reason
    sim.do(ev.TerminateJob, job_id=a_jobs[3].job_id, reason="stop")
    # the agent kills once, with the first reason it was given: the preemption's
    sim.end(launch_of(sim, a_jobs[3]), exit_code=None, reason=preempted)
    assert (a_jobs[3].status, a_jobs[3].status_reason) == (JobStatus.FAILED, "stop")


def test_in_share_preemption_stops_a_lower_priority_job_of_the_same_share() -> None:
    sim = shared(a=(2, "RESERVE", {"in_share_preemption": True}), b=(2, "RESERVE", {}))
    low = [sim.submit(share_identifier="a", priority=1) for _ in range(2)]
    run(sim)
    high = sim.submit(share_identifier="a", priority=9)
    sim.schedule()
    preemptions = sim.plans[-1].preemptions
    assert [p.job_id for p in preemptions] == [low[1].job_id]  # one, the newest low one
    assert "higher schedulingPriority (9 > 1)" in preemptions[0].reason
    sim.end(launch_of(sim, low[1]), exit_code=None, reason=preemptions[0].reason)
    assert [x.job_id for x in run(sim)] == [high.job_id]


def test_a_full_share_with_in_share_preemption_and_a_long_queue_still_preempts_and_lets_others_start() -> (
    None
):
    """Past 50 candidates for in-share preemption, a share at its quota closes for the rest of
    the pass (its later jobs are not read: the pass stays O(open shares' jobs)); the candidates
    it has still preempt, and another share's job behind them all still starts."""
    sim = shared(nodes=2, a=(2, "RESERVE", {"in_share_preemption": True}), b=(2, "RESERVE", {}))
    low = [sim.submit(share_identifier="a", priority=1) for _ in range(2)]
    run(sim)
    high = sim.submit(share_identifier="a", priority=9)
    for _ in range(200):
        sim.submit(share_identifier="a", priority=1)
    b_job = sim.submit(share_identifier="b")
    sim.schedule()
    plan = sim.plans[-1]
    assert [p.job_id for p in plan.placements] == [b_job.job_id]
    assert [(p.job_id, p.for_job) for p in plan.preemptions] == [(low[1].job_id, high.job_id)]


def test_without_in_share_preemption_a_share_waits_for_its_own_jobs() -> None:
    sim = shared(a=(2, "RESERVE", {}), b=(2, "RESERVE", {}))
    for _ in range(2):
        sim.submit(share_identifier="a", priority=1)
    run(sim)
    sim.submit(share_identifier="a", priority=9)
    sim.schedule()
    assert sim.plans[-1].preemptions == ()


def test_a_stale_preemption_is_not_applied() -> None:
    sim = ab()
    a_jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    sim.submit(share_identifier="b")
    plan = schedule(sim.state, sim.now)
    for job in a_jobs[:2]:  # two in-quota jobs end: the borrowers are within the quota now
        sim.end(launch_of(sim, job))
    sim.do(ev.PlanApplied, plan=plan)
    assert sim.killed == []


def test_preemption_and_shares_survive_a_restart() -> None:
    sim = ab()
    a_jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    sim.submit(share_identifier="b")
    sim.schedule()
    sim.restart()
    sim.schedule()  # the kill under way is known from the stored job: no second preemption
    assert sim.plans[-1].preemptions == ()
    victim = sim.state.jobs[a_jobs[3].job_id]
    assert victim.kill_reason is not None and victim.kill_reason.startswith("Preempted: ")


def test_a_waiting_job_says_its_share_holds_it_with_numbers() -> None:
    sim = ab(borrow_limit=50)
    jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    assert explain(sim.state, jobs[3]) == (
        'quota share "a" is at its quota: 2 of 2 vCPUs in use; '
        "borrowLimit 50 %: 1 of 1 vCPUs borrowed"
    )
    sim2 = shared(a=(2, "LEND_AND_BORROW", {}), r=(2, "RESERVE", {}))
    more = [sim2.submit(share_identifier="a") for _ in range(3)]
    run(sim2)
    assert explain(sim2.state, more[2]) == (
        'quota share "a" is at its quota: 2 of 2 vCPUs in use; '
        "nothing idle to borrow (borrowLimit unlimited: 0 vCPUs borrowed)"
    )
    held = sim2.submit(share_identifier="r", vcpus=3)
    assert explain(sim2.state, held) == (
        'quota share "r" is at its quota: 0 of 2 vCPUs in use; its strategy RESERVE does not borrow'
    )


def test_a_job_waiting_for_its_preempted_borrowers_says_so() -> None:
    sim = ab()
    for _ in range(4):
        sim.submit(share_identifier="a")
    run(sim)
    b_job = sim.submit(share_identifier="b")
    sim.schedule()
    victim = sim.plans[-1].preemptions[0].job_id
    assert explain(sim.state, b_job) == (
        f'within quota share "b"\'s quota: waiting for 1 preempted job(s) to stop ({victim})'
    )


def test_a_multi_node_job_counts_its_whole_nodes_against_its_share() -> None:
    sim = shared(nodes=2, vcpus=4, small=(4, "RESERVE", {}), big=(8, "RESERVE", {}))
    sim.gang_definition(nodes=2, vcpus=1)
    held = sim.submit_gang(share_identifier="small")
    run(sim)
    assert held.status is JobStatus.RUNNABLE  # two whole 4-vCPU nodes: 8 vCPUs > 4
    assert explain(sim.state, held) == (
        'quota share "small" is at its quota: 0 of 4 vCPUs in use; '
        "its strategy RESERVE does not borrow"
    )
    gang = sim.submit_gang(share_identifier="big")
    run(sim)
    assert gang.status is not JobStatus.RUNNABLE


def test_a_job_that_succeeds_as_its_preemption_arrives_has_succeeded() -> None:
    sim = ab()
    a_jobs = [sim.submit(share_identifier="a") for _ in range(4)]
    run(sim)
    sim.submit(share_identifier="b")
    sim.schedule()
    victim = a_jobs[3]
    assert victim.kill_reason is not None
    sim.end(launch_of(sim, victim), exit_code=0, reason=victim.kill_reason)
    assert victim.status is JobStatus.SUCCEEDED


def test_gpu_and_memory_quotas_limit_their_units_only() -> None:
    sim = Sim().cluster(nodes=1, vcpus=8, memory=8192, gpus=4)
    sim.do(
        ev.CreateQuotaShare,
        name="g",
        queue="q",
        strategy="RESERVE",
        limits=(("GPU", 1), ("MEMORY_MIB", 2048)),
    )
    gpu_jobs = [sim.submit(share_identifier="g", gpus=1) for _ in range(2)]
    cpu_jobs = [sim.submit(share_identifier="g", memory=512) for _ in range(3)]
    run(sim)
    assert [j.status for j in gpu_jobs] == [JobStatus.RUNNING, JobStatus.RUNNABLE]
    # memory: 512 (the GPU job) + 3 x 512 = 2048: all three fit; vCPUs are not limited
    assert all(j.status is JobStatus.RUNNING for j in cpu_jobs)
    assert explain(sim.state, gpu_jobs[1]) == (
        'quota share "g" is at its quota: 1 of 1 GPUs in use; its strategy RESERVE does not borrow'
    )


def test_a_borrowing_multi_node_job_is_preempted_whole_and_requeued() -> None:
    sim = shared(nodes=2, vcpus=4, a=(4, "LEND_AND_BORROW", {}), b=(4, "LEND", {}))
    sim.gang_definition(nodes=2, vcpus=1)
    gang = sim.submit_gang(share_identifier="a", retry=retry(1))
    run(sim)  # the other node starts; the main node is launched past its barrier
    sim.start(sim.launched[-1])
    assert gang.status is JobStatus.RUNNING
    b_job = sim.submit(share_identifier="b")
    sim.schedule()
    preemptions = sim.plans[-1].preemptions
    assert len(preemptions) == 1 and preemptions[0].for_job == b_job.job_id
    killed = {k.attempt_id for k in sim.killed}
    assert killed == {f"{gang.job_id}#0/1", f"{gang.job_id}#1/1"}  # the whole gang
    for k in list(sim.killed):
        launch = next(x for x in sim.launched if x.attempt_id == k.attempt_id)
        sim.end(launch, exit_code=None, reason=k.reason)
    assert gang.status is JobStatus.RUNNABLE  # requeued though its strategy allows 1 attempt
    assert [x.job_id for x in run(sim)] == [b_job.job_id]
