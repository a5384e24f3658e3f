"""Quota shares in the pure core: creating, updating, deleting, joining one at submission,
and surviving a restart."""

from __future__ import annotations

from typing import Any

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.model import JobStatus
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError
from tests.core.sim import Sim

ARN = "arn:aws:batch:local:000000000000:job-queue/q/quota-share/"


def share(sim: Sim, name: str, vcpus: int = 2, strategy: str = "LEND", **fields: Any) -> None:
    fields.setdefault("limits", (("VCPU", vcpus),))
    sim.do(ev.CreateQuotaShare, name=name, queue="q", strategy=strategy, **fields)


def test_a_share_is_created_with_its_arn_and_survives_a_restart() -> None:
    sim = Sim().cluster()
    share(sim, "a", 2, "LEND_AND_BORROW", borrow_limit=50, tags={"team": "a"})
    created = sim.state.quota_shares["q/a"]
    assert created.arn == ARN + "a"
    assert (created.limits, created.strategy, created.borrow_limit) == (
        {"VCPU": 2},
        "LEND_AND_BORROW",
        50,
    )
    sim.restart()
    assert sim.state.quota_shares["q/a"] == created


@pytest.mark.parametrize(
    ("fields", "error", "words"),
    [
        (
            {"limits": (("ml.m5.large", 2),)},
            ValidationError,
            "must be one of VCPU, GPU, MEMORY_MIB",
        ),
        ({"limits": (("VCPU", 2), ("VCPU", 1))}, ValidationError, "names VCPU twice"),
        ({"limits": ()}, ValidationError, "capacityLimits: must name at least one"),
        (
            {"strategy": "LEND", "borrow_limit": 10},
            ValidationError,
            "only applies to strategy LEND_AND_BORROW",
        ),
        ({"name": "team-a"}, ValidationError, "quotaShareName: must be 1-128 letters and digits"),
        ({"queue": "nope"}, NotFoundError, "jobQueue: no job queue named 'nope'"),
    ],
)
def test_refusals_name_the_field_and_rule(
    fields: dict[str, Any], error: type[Exception], words: str
) -> None:
    sim = Sim().cluster()
    request: dict[str, Any] = {
        "name": "a",
        "queue": "q",
        "strategy": "LEND",
        "limits": (("VCPU", 1),),
    }
    request.update(fields)
    with pytest.raises(error, match=words):
        sim.do(ev.CreateQuotaShare, **request)
    assert sim.state.quota_shares == {}


def test_names_are_unique_per_queue_not_globally() -> None:
    sim = Sim().cluster()
    sim.do(ev.CreateJobQueue, name="q2", priority=1, ce_order=((1, "local"),))
    share(sim, "a")
    with pytest.raises(ConflictError, match="already has 'a'"):
        share(sim, "a")
    sim.do(ev.CreateQuotaShare, name="a", queue="q2", strategy="LEND", limits=(("GPU", 1),))
    assert set(sim.state.quota_shares) == {"q/a", "q2/a"}


def test_a_queue_has_either_a_scheduling_policy_or_quota_shares() -> None:
    sim = Sim().cluster()
    sim.do(ev.CreateSchedulingPolicy, name="fair")
    policy = sim.state.policies["fair"].arn
    sim.do(ev.CreateJobQueue, name="fq", priority=1, ce_order=((1, "local"),), policy_arn=policy)
    with pytest.raises(ConflictError, match="has a fair-share scheduling policy"):
        sim.do(ev.CreateQuotaShare, name="a", queue="fq", strategy="LEND", limits=(("VCPU", 1),))
    sim.do(ev.CreateJobQueue, name="q2", priority=1, ce_order=((1, "local"),))
    sim.do(ev.CreateQuotaShare, name="a", queue="q2", strategy="LEND", limits=(("VCPU", 1),))
    with pytest.raises(ValidationError, match="schedulingPolicyArn: job queue q2 is a FIFO queue"):
        sim.do(ev.UpdateJobQueue, ref="q2", policy_arn=policy)
    assert sim.state.queues["q2"].policy is None


def test_jobs_join_a_share_by_share_identifier() -> None:
    sim = Sim().cluster()
    share(sim, "a")
    share(sim, "b", state="DISABLED")
    with pytest.raises(ValidationError, match="shareIdentifier: is required on job queue q"):
        sim.submit()
    with pytest.raises(ValidationError, match="has no quota share 'c' \\(it has: a, b\\)"):
        sim.submit(share_identifier="c")
    with pytest.raises(ValidationError, match="quota share 'b' is DISABLED"):
        sim.submit(share_identifier="b")
    parent = sim.submit(share_identifier="a", array_size=2)
    assert parent.share == "a"
    assert [c.share for c in sim.state.children_of(parent)] == ["a", "a"]
    sim.restart()
    assert [c.share for c in sim.state.children_of(sim.state.jobs[parent.job_id])] == ["a", "a"]


def test_gang_nodes_inherit_the_share() -> None:
    sim = Sim().cluster(nodes=2)
    sim.gang_definition(nodes=2)
    share(sim, "a", 8)
    gang = sim.submit_gang(share_identifier="a")
    assert {sim.node(gang, i).share for i in range(2)} == {"a"}


def test_update_and_delete() -> None:
    sim = Sim().cluster()
    share(sim, "a", 2, "LEND_AND_BORROW")
    job = sim.submit(share_identifier="a", vcpus=2)
    sim.start(sim.schedule()[0])
    sim.do(ev.UpdateQuotaShare, ref=ARN + "a", sharing=("LEND", None), in_share_preemption=True)
    with pytest.raises(ConflictError, match="running jobs hold more than the new configuration"):
        sim.do(ev.UpdateQuotaShare, ref=ARN + "a", limits=(("VCPU", 1),))
    assert sim.state.quota_shares["q/a"].limits == {"VCPU": 2}
    with pytest.raises(ConflictError, match="is ENABLED; disable it"):
        sim.do(ev.DeleteQuotaShare, ref=ARN + "a")
    sim.do(ev.UpdateQuotaShare, ref="q/quota-share/a", state="DISABLED")
    with pytest.raises(ConflictError, match=f"still has 1 unfinished job\\(s\\): {job.job_id}"):
        sim.do(ev.DeleteQuotaShare, ref=ARN + "a")
    sim.end(sim.launched[0])
    assert job.status is JobStatus.SUCCEEDED
    sim.do(ev.DeleteQuotaShare, ref=ARN + "a")
    assert sim.state.quota_shares == {}
    with pytest.raises(NotFoundError, match="has no quota share named 'a'"):
        sim.do(ev.DeleteQuotaShare, ref=ARN + "a")


def test_a_queue_gets_its_first_share_only_while_it_has_no_unfinished_jobs() -> None:
    sim = Sim().cluster()
    job = sim.submit()
    with pytest.raises(ConflictError, match="1 unfinished job\\(s\\) outside any quota share"):
        share(sim, "a")
    sim.do(ev.CancelJob, job_id=job.job_id, reason="make room")
    share(sim, "a")
    assert set(sim.state.quota_shares) == {"q/a"}


def test_a_fair_share_queue_and_a_quota_share_queue_keep_their_own_indexes() -> None:
    """Both kinds of queue name a share in ``Job.share``: each job is indexed by its own
    queue's kind (the invariants check both indexes after every step), through a pass and a
    restart."""
    sim = Sim().cluster()
    share(sim, "a")
    sim.do(ev.CreateSchedulingPolicy, name="fair")
    policy = sim.state.policies["fair"].arn
    sim.do(ev.CreateJobQueue, name="fq", priority=2, ce_order=((1, "local"),), policy_arn=policy)
    fair = [sim.submit(queue="fq", share_identifier="a") for _ in range(3)]
    quota = [sim.submit(queue="q", share_identifier="a") for _ in range(3)]
    assert {k: len(v) for k, v in sim.state.share_runnable.items()} == {"q/a": 3}
    assert {s: len(v) for s, v in sim.state.fair_runnable["fq"].items()} == {"a": 3}
    sim.schedule()
    sim.restart()
    statuses = {sim.state.jobs[j.job_id].status for j in fair + quota}
    assert statuses <= {JobStatus.RUNNABLE, JobStatus.STARTING}
