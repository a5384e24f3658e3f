"""GetJobQueueSnapshot through boto3 on a queue with quota shares (AWS's way: a queue whose
policy is a ``quotaSharePolicy``), against a real head on LOCAL nodes: ``frontOfQueue`` in the
quota pass's order, ``frontOfQuotaShares`` (each share's first job) and
``queueUtilization.quotaShareUtilization`` (each share's use); a FIFO queue's answer has none of
the quota members."""

from __future__ import annotations

from tests.head.headproc import HeadProcess
from tests.head.quota_story import snapshot_scene

FIFO = {"idleResourceAssignmentStrategy": "FIFO"}
LOCAL = [{"order": 1, "computeEnvironment": "local"}]


def test_the_snapshot_of_a_queue_with_two_quota_shares(head: HeadProcess) -> None:
    b = head.batch()
    policy = b.create_scheduling_policy(name="quota", quotaSharePolicy=FIFO)["arn"]
    b.create_job_queue(
        jobQueueName="qq", priority=1, schedulingPolicyArn=policy, computeEnvironmentOrder=LOCAL
    )
    ids = snapshot_scene(head, "qq")
    snapshot = b.get_job_queue_snapshot(jobQueue="qq")
    front = [entry["jobArn"].rpartition("/")[2] for entry in snapshot["frontOfQueue"]["jobs"]]
    # in b's quota first, then a's borrower, then a4 (over a's borrow limit), not a3, a4, b1
    assert front == [ids["b1"], ids["a3"], ids["a4"]]
    for entry in snapshot["frontOfQueue"]["jobs"]:
        job = head.describe(entry["jobArn"].rpartition("/")[2])
        assert entry["earliestTimeAtPosition"] >= job["createdAt"]
    firsts = snapshot["frontOfQuotaShares"]["quotaShares"]
    assert {
        share: [e["jobArn"].rpartition("/")[2] for e in jobs] for share, jobs in firsts.items()
    } == {
        "a": [ids["a3"]],
        "b": [ids["b1"]],
    }
    assert firsts["a"][0]["jobArn"].startswith("arn:aws:batch:local:")
    utilization = snapshot["queueUtilization"]
    assert utilization["totalCapacityUsage"] == [{"capacityUnit": "VCPU", "quantity": 3.0}]
    assert utilization["quotaShareUtilization"]["topCapacityUtilization"] == [
        {"quotaShareName": "a", "capacityUsage": [{"capacityUnit": "VCPU", "quantity": 3.0}]},
        {"quotaShareName": "b", "capacityUsage": [{"capacityUnit": "VCPU", "quantity": 0.0}]},
    ]
    assert "fairshareUtilization" not in utilization
    # a FIFO queue without quota shares: no quota members
    fifo = b.get_job_queue_snapshot(jobQueue="default")
    assert "frontOfQuotaShares" not in fifo
    assert "quotaShareUtilization" not in fifo["queueUtilization"]
    b.terminate_jobs(jobs=list(ids.values()), reason="test over")
