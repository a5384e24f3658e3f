"""AWS's quota-share scheduling policy (``quotaSharePolicy``) in the pure core: one kind per
policy, a queue that names one takes quota shares and follows their rules, the changes between
kinds that are refused, and the link surviving a restart."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobStatus
from hpcbatch.errors import ConflictError, ValidationError
from tests.core.sim import Sim


def quota_policy(sim: Sim, name: str = "qp") -> str:
    sim.do(ev.CreateSchedulingPolicy, name=name, fairshare=False, quota_strategy="FIFO")
    return sim.state.policies[name].arn


def quota_queue(sim: Sim, name: str = "qq", policy: str = "qp") -> None:
    arn = sim.state.policies[policy].arn
    sim.do(ev.CreateJobQueue, name=name, priority=1, ce_order=((1, "local"),), policy_arn=arn)


def test_a_policy_is_of_exactly_one_kind_and_only_fifo() -> None:
    sim = Sim().cluster()
    with pytest.raises(ValidationError, match="fairsharePolicy, quotaSharePolicy: give one of"):
        sim.do(ev.CreateSchedulingPolicy, name="both", quota_strategy="FIFO")
    with pytest.raises(ValidationError, match="fairsharePolicy, quotaSharePolicy: give one of"):
        sim.do(ev.CreateSchedulingPolicy, name="neither", fairshare=False)
    with pytest.raises(
        ValidationError, match="idleResourceAssignmentStrategy: must be FIFO \\(got 'LIFO'\\)"
    ):
        sim.do(ev.CreateSchedulingPolicy, name="lifo", fairshare=False, quota_strategy="LIFO")
    assert sim.state.policies == {}
    arn = quota_policy(sim)
    created = sim.state.policies["qp"]
    assert (created.is_quota, created.has_fairshare, created.quota_strategy) == (
        True,
        False,
        "FIFO",
    )
    sim.do(ev.UpdateSchedulingPolicy, arn=arn, fairshare=False, quota_strategy="FIFO")
    sim.restart()
    assert sim.state.policies["qp"] == created


def test_a_quota_policy_queue_takes_quota_shares_and_runs_their_jobs() -> None:
    sim = Sim().cluster()
    quota_policy(sim)
    quota_queue(sim)
    with pytest.raises(
        ValidationError, match="quota-share scheduling policy \\(qp\\) and no quota"
    ):
        sim.submit(queue="qq")
    sim.do(ev.CreateQuotaShare, name="a", queue="qq", strategy="LEND", limits=(("VCPU", 2),))
    with pytest.raises(ValidationError, match="shareIdentifier: is required on job queue qq"):
        sim.submit(queue="qq")
    job = sim.submit(queue="qq", share_identifier="a", vcpus=1)
    assert sim.state.in_quota_share(job)
    assert {k: len(v) for k, v in sim.state.share_runnable.items()} == {"qq/a": 1}
    sim.start(sim.schedule()[0])
    assert job.status is JobStatus.RUNNING
    sim.restart()
    queue = sim.state.queues["qq"]
    assert (queue.policy, queue.quota_policy) == (None, "qp")
    assert sim.state.quota_shares["qq/a"].queue == "qq"


def test_a_fair_share_queue_still_refuses_quota_shares() -> None:
    sim = Sim().cluster()
    sim.do(ev.CreateSchedulingPolicy, name="fair")
    quota_queue(sim, "fq", "fair")
    with pytest.raises(ConflictError, match="has a fair-share scheduling policy \\(fair\\)"):
        sim.do(ev.CreateQuotaShare, name="a", queue="fq", strategy="LEND", limits=(("VCPU", 1),))


def test_a_policy_never_changes_kind() -> None:
    sim = Sim().cluster()
    arn = quota_policy(sim)
    quota_queue(sim)
    with pytest.raises(ConflictError, match="is a quota-share policy; job queue\\(s\\) qq use"):
        sim.do(ev.UpdateSchedulingPolicy, arn=arn, shares=())
    sim.do(ev.CreateSchedulingPolicy, name="fair")
    fair = sim.state.policies["fair"].arn
    with pytest.raises(ConflictError, match="quotaSharePolicy: scheduling policy 'fair' is a fair"):
        sim.do(ev.UpdateSchedulingPolicy, arn=fair, fairshare=False, quota_strategy="FIFO")
    with pytest.raises(ValidationError, match="give one of them, not both"):
        sim.do(ev.UpdateSchedulingPolicy, arn=fair, quota_strategy="FIFO")
    with pytest.raises(ConflictError, match="used by job queue\\(s\\) qq"):
        sim.do(ev.DeleteSchedulingPolicy, arn=arn)
    assert not sim.state.policies["fair"].is_quota and sim.state.policies["qp"].is_quota


def test_a_queue_changes_kind_only_without_shares_or_unfinished_fair_jobs() -> None:
    sim = Sim().cluster()
    quota_policy(sim)
    quota_policy(sim, "qp2")
    sim.do(ev.CreateSchedulingPolicy, name="fair")
    fair, qp, qp2 = (sim.state.policies[n].arn for n in ("fair", "qp", "qp2"))
    quota_queue(sim)
    sim.do(ev.CreateQuotaShare, name="a", queue="qq", strategy="LEND", limits=(("VCPU", 1),))
    with pytest.raises(ConflictError, match="job queue 'qq' has quota shares \\(a\\)"):
        sim.do(ev.UpdateJobQueue, ref="qq", policy_arn=fair)
    sim.do(ev.UpdateJobQueue, ref="qq", policy_arn=qp2)
    assert sim.state.queues["qq"].quota_policy == "qp2"
    quota_queue(sim, "fq", "fair")
    job = sim.submit(queue="fq", share_identifier="x")
    with pytest.raises(ConflictError, match="'fq' has 1 unfinished fair-share job\\(s\\)"):
        sim.do(ev.UpdateJobQueue, ref="fq", policy_arn=qp)
    sim.do(ev.CancelJob, job_id=job.job_id, reason="make room")
    sim.do(ev.UpdateJobQueue, ref="fq", policy_arn=qp)
    queue = sim.state.queues["fq"]
    assert (queue.policy, queue.quota_policy) == (None, "qp")
    sim.do(ev.CreateQuotaShare, name="b", queue="fq", strategy="LEND", limits=(("VCPU", 1),))
    sim.do(ev.CreateJobQueue, name="plain", priority=1, ce_order=((1, "local"),))
    with pytest.raises(ValidationError, match="job queue plain is a FIFO queue"):
        sim.do(ev.UpdateJobQueue, ref="plain", policy_arn=qp)
    sim.restart()
    assert sim.state.queues["fq"].quota_policy == "qp"


def test_an_attempt_remembers_when_it_was_scheduled_through_a_restart() -> None:
    """ListJobs' ``scheduledAt`` (tests/head/test_boto3_quota_share_policy.py): the time of the
    plan that placed the attempt, not of its start."""
    sim = Sim().cluster()
    job = sim.submit()
    sim.now += 5000
    (launch,) = sim.schedule()
    sim.now += 3000
    sim.start(launch)
    assert (job.attempts[0].scheduled_at, job.attempts[0].started_at) == (1_005_000, 1_008_000)
    sim.restart()
    assert sim.state.jobs[job.job_id].attempts[0].scheduled_at == 1_005_000
