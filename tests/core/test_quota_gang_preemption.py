"""Quota-share preemption for multi-node jobs: an in-quota gang gets whole nodes back from
borrowers across several nodes (the fewest victim jobs, never an in-quota job), a gang borrower
is stopped whole, the freed nodes are held for the gang, and in-share preemption works for a
gang too."""

from __future__ import annotations

from typing import Any

from hpcbatch.core import events as ev
from hpcbatch.core.commands import LaunchAttempt
from hpcbatch.core.explain import explain
from hpcbatch.core.model import Job, JobStatus
from hpcbatch.core.scheduler import schedule
from tests.core.sim import Sim, retry


def shared(nodes: int, **shares: tuple[int, str, dict[str, Any]]) -> Sim:
    sim = Sim().cluster(nodes=nodes, vcpus=4)
    sim.gang_definition(nodes=2, vcpus=1)
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


def run(sim: Sim) -> list[LaunchAttempt]:
    """Schedule and start what was launched, until nothing more starts (a gang's main node is
    launched once its other nodes run)."""
    started: list[LaunchAttempt] = []
    while launches := sim.schedule():
        while launches:  # starting a gang's other nodes launches its main node
            before = len(sim.launched)
            for launch in launches:
                sim.start(launch)
            started += launches
            launches = sim.launched[before:]
        sim.now += 1
    return started


def place(sim: Sim, share: str, vcpus: int, **fields: Any) -> Job:
    """Submit one job and start it (one at a time, so where it lands is known)."""
    job = sim.submit(share_identifier=share, vcpus=vcpus, **fields)
    run(sim)
    assert job.status is JobStatus.RUNNING
    return job


def on(sim: Sim, job: Job) -> str:
    return job.attempts[-1].node


def end_kills(sim: Sim) -> None:
    """Every kill sent ends as killed (with the kill's reason)."""
    for kill in sim.killed:
        launch = next(x for x in sim.launched if x.attempt_id == kill.attempt_id)
        job = sim.state.jobs[launch.job_id]
        if job.attempts[-1].stopped_at is None:
            sim.end(launch, exit_code=None, reason=kill.reason)


def four_nodes() -> tuple[Sim, Job, list[Job]]:
    """Four 4-vCPU nodes. Share a (4 vCPUs, LEND_AND_BORROW) runs an in-quota job on n0 and
    borrows the rest from b (12 vCPUs, LEND): one 4-vCPU borrower on n1, one on n2, and two
    2-vCPU borrowers (the newest) on n3."""
    sim = shared(4, a=(4, "LEND_AND_BORROW", {}), b=(12, "LEND", {}))
    in_quota = place(sim, "a", 4)
    borrowers = [place(sim, "a", v, retry=retry(1)) for v in (4, 4, 2, 2)]
    nodes = [on(sim, j) for j in [in_quota, *borrowers]]
    assert nodes == ["local-n0", "local-n1", "local-n2", "local-n3", "local-n3"]
    return sim, in_quota, borrowers


def test_a_gang_gets_two_nodes_back_from_the_fewest_borrowers_across_nodes() -> None:
    sim, in_quota, borrowers = four_nodes()
    gang = sim.submit_gang(share_identifier="b")
    sim.schedule()
    preemptions = sim.plans[-1].preemptions
    # Two whole nodes: n2 and n1 (one borrower each), not n3 (two newer borrowers) nor n0.
    assert [p.job_id for p in preemptions] == [borrowers[1].job_id, borrowers[0].job_id]
    assert {p.for_job for p in preemptions} == {gang.job_id}
    assert preemptions[0].reason == (
        f'Preempted: quota share "b" needs its capacity back (job {gang.job_id} waits)'
    )
    assert explain(sim.state, gang) == (
        f'within quota share "b"\'s quota: waiting for 2 preempted job(s) to stop '
        f"({', '.join(sorted([borrowers[0].job_id, borrowers[1].job_id]))})"
    )
    # The kills are under way: the next pass asks for no more.
    sim.schedule()
    assert sim.plans[-1].preemptions == () and len(sim.killed) == 2
    # n1 is free first; the requeued borrower may not take it: it is held for the gang.
    first = next(x for x in sim.launched if x.job_id == borrowers[0].job_id)
    sim.end(first, exit_code=None, reason=sim.killed[0].reason)
    assert borrowers[0].status is JobStatus.RUNNABLE  # requeued, its 1 attempt not used up
    assert run(sim) == []
    assert {r.node for r in sim.plans[-1].reservations if r.job_id == gang.job_id} >= {
        "local-n1",
        "local-n2",
    }
    end_kills(sim)
    run(sim)
    assert gang.status is JobStatus.RUNNING
    assert {on(sim, sim.node(gang, i)) for i in range(2)} == {"local-n1", "local-n2"}
    assert in_quota.status is JobStatus.RUNNING and len(in_quota.attempts) == 1
    assert all(len(j.attempts) == 1 and j.status is JobStatus.RUNNING for j in borrowers[2:])
    # The gang ends: the requeued borrowers run again (second attempts).
    for i in range(2):
        sim.end(next(x for x in sim.launched if x.job_id == sim.node(gang, i).job_id))
    assert gang.status is JobStatus.SUCCEEDED
    run(sim)
    assert [len(j.attempts) for j in borrowers[:2]] == [2, 2]
    assert all(j.status is JobStatus.RUNNING for j in borrowers[:2])


def test_a_stale_victim_cancels_every_preemption_for_the_gang() -> None:
    sim, in_quota, borrowers = four_nodes()
    sim.submit_gang(share_identifier="b")
    plan = schedule(sim.state, sim.now)
    assert len(plan.preemptions) == 2
    # a's in-quota job ends: its oldest borrower (n1) is within the quota now, and the other
    # victim alone would not make room for the gang.
    sim.end(next(x for x in sim.launched if x.job_id == in_quota.job_id))
    sim.do(ev.PlanApplied, plan=plan)
    assert sim.killed == []
    assert all(j.kill_reason is None for j in borrowers)


def test_a_gang_borrower_is_stopped_whole_and_counts_on_each_of_its_nodes() -> None:
    sim = shared(3, a=(4, "LEND_AND_BORROW", {}), b=(8, "LEND", {}))
    in_quota = place(sim, "a", 4)
    borrower = sim.submit_gang(share_identifier="a", retry=retry(1))
    run(sim)
    assert borrower.status is JobStatus.RUNNING
    assert {on(sim, sim.node(borrower, i)) for i in range(2)} == {"local-n1", "local-n2"}
    gang = sim.submit_gang(share_identifier="b")
    sim.schedule()
    preemptions = sim.plans[-1].preemptions
    assert len(preemptions) == 1  # one victim job frees both nodes
    assert preemptions[0].job_id.startswith(f"{borrower.job_id}#")
    killed = {k.attempt_id for k in sim.killed}
    assert killed == {f"{borrower.job_id}#0/1", f"{borrower.job_id}#1/1"}
    assert explain(sim.state, gang).startswith(
        f'within quota share "b"\'s quota: waiting for 1 preempted job(s) to stop ({borrower.job_id})'
    )
    end_kills(sim)
    assert borrower.status is JobStatus.RUNNABLE  # requeued whole, its attempt not used up
    run(sim)
    assert gang.status is JobStatus.RUNNING
    assert borrower.status is JobStatus.RUNNABLE
    assert in_quota.status is JobStatus.RUNNING and len(in_quota.attempts) == 1


def test_no_in_quota_job_is_a_victim_and_no_kill_that_would_not_make_room() -> None:
    # n0: a's in-quota job, n1: a's borrower, n2: c's in-quota job. b's gang needs two whole
    # nodes; only n1 could be freed: stopping its borrower would not make room, so nothing is.
    sim = shared(3, a=(4, "LEND_AND_BORROW", {}), b=(8, "LEND", {}), c=(4, "RESERVE", {}))
    a_in = place(sim, "a", 4)
    a_borrower = place(sim, "a", 4)
    c_in = place(sim, "c", 4)
    assert [on(sim, j) for j in (a_in, a_borrower, c_in)] == ["local-n0", "local-n1", "local-n2"]
    gang = sim.submit_gang(share_identifier="b")
    for _ in range(3):
        sim.schedule()
        assert sim.plans[-1].preemptions == ()
    assert sim.killed == []
    assert gang.status is JobStatus.RUNNABLE
    assert explain(sim.state, gang).startswith("waiting for 2 whole nodes")


def test_in_share_preemption_frees_whole_nodes_for_a_higher_priority_gang() -> None:
    # Share a (12 vCPUs, RESERVE, inSharePreemption) runs low-priority jobs on three nodes:
    # n0 and n1 one each, n2 two (the newest). Its priority-9 gang needs two whole nodes and
    # 8 vCPUs of the quota: the one job on n1 and the one on n0 are enough.
    sim = shared(3, a=(12, "RESERVE", {"in_share_preemption": True}))
    low = [place(sim, "a", v, priority=1) for v in (4, 4, 2, 2)]
    assert [on(sim, j) for j in low] == ["local-n0", "local-n1", "local-n2", "local-n2"]
    gang = sim.submit_gang(share_identifier="a", priority=9)
    sim.schedule()
    preemptions = sim.plans[-1].preemptions
    assert [p.job_id for p in preemptions] == [low[1].job_id, low[0].job_id]
    assert "higher schedulingPriority (9 > 1)" in preemptions[0].reason
    assert all(p.for_job == gang.job_id for p in preemptions)
    end_kills(sim)
    run(sim)
    assert gang.status is JobStatus.RUNNING
    assert [j.status for j in low] == [JobStatus.RUNNABLE] * 2 + [JobStatus.RUNNING] * 2


def test_a_lower_priority_gang_of_the_share_is_stopped_whole_for_a_higher_one() -> None:
    sim = shared(2, a=(8, "RESERVE", {"in_share_preemption": True}))
    low = sim.submit_gang(share_identifier="a", priority=1)
    run(sim)
    assert low.status is JobStatus.RUNNING
    high = sim.submit_gang(share_identifier="a", priority=9)
    sim.schedule()
    assert len(sim.plans[-1].preemptions) == 1
    assert {k.attempt_id for k in sim.killed} == {f"{low.job_id}#0/1", f"{low.job_id}#1/1"}
    end_kills(sim)
    run(sim)
    assert high.status is JobStatus.RUNNING and low.status is JobStatus.RUNNABLE


def test_a_gangs_kills_under_way_survive_a_restart_and_keep_its_nodes() -> None:
    sim, _, borrowers = four_nodes()
    gang = sim.submit_gang(share_identifier="b")
    sim.schedule()
    first = next(x for x in sim.launched if x.job_id == borrowers[0].job_id)
    sim.end(first, exit_code=None, reason=sim.killed[0].reason)  # n1 free, n2 still stopping
    sim.restart()
    gang = sim.state.jobs[gang.job_id]  # the restarted state's own
    assert run(sim) == []  # no second preemption, and nobody takes n1
    assert sim.plans[-1].preemptions == ()
    held = {r.node for r in sim.plans[-1].reservations if r.job_id == gang.job_id}
    assert {"local-n1", "local-n2"} <= held
    end_kills(sim)
    run(sim)
    assert gang.status is JobStatus.RUNNING


def test_one_gang_borrower_freeing_both_nodes_beats_two_newer_victims() -> None:
    # n0: a's in-quota job; n1, n2: a's 2-node borrower; n3: a newer single borrower. Newest
    # first would stop the single job and the gang; the fewest victims is the gang alone.
    sim = shared(4, a=(4, "LEND_AND_BORROW", {}), b=(12, "LEND", {}))
    place(sim, "a", 4)
    borrower = sim.submit_gang(share_identifier="a")
    run(sim)
    newer = place(sim, "a", 4)
    assert on(sim, newer) == "local-n3"
    sim.submit_gang(share_identifier="b")
    sim.schedule()
    victims = [p.job_id.split("#")[0] for p in sim.plans[-1].preemptions]
    assert victims == [borrower.job_id]
    assert newer.kill_reason is None
