"""AWS's quota-share sequence through boto3 and a real head: CreateSchedulingPolicy with a
``quotaSharePolicy``, CreateJobQueue naming it, CreateQuotaShare on that queue, SubmitJob into
the share; the refusals around the two kinds of policy; a restart that keeps the policy and the
queue's link. ListJobs' ``scheduledAt`` is checked on the way."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.head.headproc import HeadProcess
from tests.head.quota_story import borrow_and_preempt, create_share, submit

FIFO = {"idleResourceAssignmentStrategy": "FIFO"}
LOCAL = [{"order": 1, "computeEnvironment": "local"}]


def _error(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert raised.value.response["Error"]["Code"] == "ClientException"
    return str(raised.value.response["Error"]["Message"])


def test_the_aws_quota_share_sequence_runs_a_job_and_survives_a_restart(head: HeadProcess) -> None:
    b = head.batch()
    policy = b.create_scheduling_policy(name="quota", quotaSharePolicy=FIFO)["arn"]
    (described,) = b.describe_scheduling_policies(arns=[policy])["schedulingPolicies"]
    assert described["quotaSharePolicy"] == FIFO
    assert "fairsharePolicy" not in described
    queue = b.create_job_queue(
        jobQueueName="qq", priority=1, schedulingPolicyArn=policy, computeEnvironmentOrder=LOCAL
    )["jobQueueArn"]
    create_share(b, "qq", "teamA", "LEND_AND_BORROW")
    assert "shareIdentifier: is required on job queue qq" in _error(
        b.submit_job, jobName="j", jobQueue="qq", jobDefinition="default"
    )
    job = submit(b, "qq", "teamA", "exit 0")
    assert head.wait_status(job, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    snapshot = b.get_job_queue_snapshot(jobQueue="qq")
    assert snapshot["frontOfQueue"]["jobs"] == []
    (summary,) = b.list_jobs(jobQueue="qq", jobStatus="SUCCEEDED")["jobSummaryList"]
    # JobSummary.scheduledAt: when the scheduler placed it (RUNNABLE -> STARTING), in ms
    assert summary["createdAt"] <= summary["scheduledAt"] <= summary["startedAt"]
    head.stop()
    head.start()
    b = head.batch()
    (described,) = b.describe_scheduling_policies(arns=[policy])["schedulingPolicies"]
    assert described["quotaSharePolicy"] == FIFO
    (found,) = b.describe_job_queues(jobQueues=[queue])["jobQueues"]
    assert found["schedulingPolicyArn"] == policy
    assert b.describe_jobs(jobs=[job])["jobs"][0]["shareIdentifier"] == "teamA"
    (kept,) = b.list_jobs(jobQueue="qq", jobStatus="SUCCEEDED")["jobSummaryList"]
    assert kept["scheduledAt"] == summary["scheduledAt"]
    assert "used by job queue(s) qq" in _error(b.delete_scheduling_policy, arn=policy)
    second = submit(b, "qq", "teamA", "exit 0")
    assert head.wait_status(second, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"


def test_the_refusals_around_the_two_kinds_of_policy(head: HeadProcess) -> None:
    b = head.batch()
    assert "fairsharePolicy, quotaSharePolicy: give one of them, not both" in _error(
        b.create_scheduling_policy, name="x", quotaSharePolicy=FIFO, fairsharePolicy={}
    )
    assert "fairsharePolicy, quotaSharePolicy: give one of them" in _error(
        b.create_scheduling_policy, name="x"
    )
    assert "idleResourceAssignmentStrategy: must be FIFO (got 'LIFO')" in _error(
        b.create_scheduling_policy,
        name="x",
        quotaSharePolicy={"idleResourceAssignmentStrategy": "LIFO"},
    )
    quota = b.create_scheduling_policy(name="quota", quotaSharePolicy=FIFO)["arn"]
    fair = b.create_scheduling_policy(name="fair", fairsharePolicy={"shareDecaySeconds": 60})["arn"]
    b.create_job_queue(
        jobQueueName="qq", priority=1, schedulingPolicyArn=quota, computeEnvironmentOrder=LOCAL
    )
    b.create_job_queue(
        jobQueueName="fq", priority=1, schedulingPolicyArn=fair, computeEnvironmentOrder=LOCAL
    )
    assert "is a quota-share policy; job queue(s) qq use it" in _error(
        b.update_scheduling_policy, arn=quota, fairsharePolicy={"shareDecaySeconds": 60}
    )
    assert "is a fair-share policy; job queue(s) fq use it" in _error(
        b.update_scheduling_policy, arn=fair, quotaSharePolicy=FIFO
    )
    b.update_scheduling_policy(arn=quota, quotaSharePolicy=FIFO)
    assert "has a fair-share scheduling policy (fair)" in _error(
        b.create_quota_share,
        quotaShareName="a",
        jobQueue="fq",
        capacityLimits=[{"maxCapacity": 1, "capacityUnit": "VCPU"}],
        resourceSharingConfiguration={"strategy": "LEND"},
        preemptionConfiguration={"inSharePreemption": "DISABLED"},
    )
    create_share(b, "qq", "a", "LEND")
    assert "job queue 'qq' has quota shares (a)" in _error(
        b.update_job_queue, jobQueue="qq", schedulingPolicyArn=fair
    )
    waiting = submit(b, "fq", "s", "sleep 60")
    assert "'fq' has 1 unfinished fair-share job(s)" in _error(
        b.update_job_queue, jobQueue="fq", schedulingPolicyArn=quota
    )
    b.terminate_job(jobId=waiting, reason="make room")
    head.wait_status(waiting, "FAILED")
    b.update_job_queue(jobQueue="fq", schedulingPolicyArn=quota)
    create_share(b, "fq", "b", "LEND")  # now a quota-share queue
    (fq,) = b.describe_job_queues(jobQueues=["fq"])["jobQueues"]
    assert fq["schedulingPolicyArn"] == quota
    b.create_job_queue(jobQueueName="plain", priority=1, computeEnvironmentOrder=LOCAL)
    create_share(b, "plain", "c", "LEND")  # hpcbatch's extension: quota shares with no policy
    assert "job queue plain is a FIFO queue" in _error(
        b.update_job_queue, jobQueue="plain", schedulingPolicyArn=quota
    )


def test_borrowing_and_preemption_on_a_queue_with_a_quota_share_policy(head: HeadProcess) -> None:
    """The story of tests/head/test_quota_shares_e2e.py, on AWS's kind of quota-share queue."""
    b = head.batch()
    policy = b.create_scheduling_policy(name="quota", quotaSharePolicy=FIFO)["arn"]
    b.create_job_queue(
        jobQueueName="qq", priority=1, schedulingPolicyArn=policy, computeEnvironmentOrder=LOCAL
    )
    borrow_and_preempt(head, "qq")
