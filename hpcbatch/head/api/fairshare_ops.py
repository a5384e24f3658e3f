"""The AWS Batch operations of scheduling policies (fair-share and quota-share kinds):
Create/Describe/List/Update/DeleteSchedulingPolicy and
GetJobQueueSnapshot (its ``frontOfQueue`` is the scheduler's own dispatch order:
core/fairshare.py ``front_of_queue``, core/quota_front.py on a queue with quota shares). Requests become core events as in operations.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpcbatch.core import events as ev
from hpcbatch.core.fairshare import front_of_queue
from hpcbatch.core.model import Job, JobQueue
from hpcbatch.core.policies import resolve_policy
from hpcbatch.core.quota_front import quota_snapshot
from hpcbatch.core.resolve import resolve_queue
from hpcbatch.core.shares import SchedulingPolicy, ShareWeight
from hpcbatch.core.state import State
from hpcbatch.core.usage import running_by_queue
from hpcbatch.errors import NotFoundError
from hpcbatch.head.api import models as m
from hpcbatch.head.api.models.scheduling_policies import QuotaSharePolicy
from hpcbatch.head.api.paging import page
from hpcbatch.head.loop import now_ms

if TYPE_CHECKING:
    from hpcbatch.head.api.operations import Call

Doc = dict[str, Any]
TOP_SHARES = 20  # AWS: "the top 20 shares with the highest capacity utilization"


def _fairshare_fields(policy: m.FairsharePolicy | None) -> dict[str, Any]:
    if policy is None:
        return {"fairshare": False}
    shares = tuple(
        ShareWeight(
            s.shareIdentifier, 10000 if s.weightFactor is None else round(s.weightFactor * 10000)
        )
        for s in policy.shareDistribution or []
    )
    return {
        "decay_s": policy.shareDecaySeconds or 0,
        "reservation": policy.computeReservation or 0,
        "shares": shares,
    }


def _quota_fields(policy: QuotaSharePolicy | None) -> dict[str, Any]:
    return {} if policy is None else {"quota_strategy": policy.idleResourceAssignmentStrategy}


async def create_policy(c: Call, r: m.CreateSchedulingPolicyRequest) -> Doc:
    event = ev.CreateSchedulingPolicy(
        cause=c.cause,
        now=now_ms(),
        name=r.name,
        tags=r.tags or {},
        **_fairshare_fields(r.fairsharePolicy),
        **_quota_fields(r.quotaSharePolicy),
    )
    await c.head.loop.call(event)
    return {"name": r.name, "arn": c.head.state.policies[r.name].arn}


async def update_policy(c: Call, r: m.UpdateSchedulingPolicyRequest) -> Doc:
    event = ev.UpdateSchedulingPolicy(
        cause=c.cause,
        now=now_ms(),
        arn=r.arn,
        **_fairshare_fields(r.fairsharePolicy),
        **_quota_fields(r.quotaSharePolicy),
    )
    await c.head.loop.call(event)
    return {}


async def delete_policy(c: Call, r: m.DeleteSchedulingPolicyRequest) -> Doc:
    await c.head.loop.call(ev.DeleteSchedulingPolicy(cause=c.cause, now=now_ms(), arn=r.arn))
    return {}


def policy_shape(policy: SchedulingPolicy) -> Doc:
    doc: Doc = {"name": policy.name, "arn": policy.arn, "tags": policy.tags}
    if policy.has_fairshare:
        doc["fairsharePolicy"] = {
            "shareDecaySeconds": policy.decay_s,
            "computeReservation": policy.reservation,
            "shareDistribution": [
                {"shareIdentifier": s.identifier, "weightFactor": s.weight_e4 / 10000}
                for s in policy.shares
            ],
        }
    if policy.quota_strategy is not None:
        doc["quotaSharePolicy"] = {"idleResourceAssignmentStrategy": policy.quota_strategy}
    return doc


async def describe_policies(c: Call, r: m.DescribeSchedulingPoliciesRequest) -> Doc:
    """As AWS: the policies named that exist, in the order asked; unknown ARNs are left out."""
    found = []
    for arn in dict.fromkeys(r.arns):
        try:
            found.append(policy_shape(resolve_policy(c.head.state, arn, "arns")))
        except NotFoundError:
            continue
    return {"schedulingPolicies": found}


async def list_policies(c: Call, r: m.ListSchedulingPoliciesRequest) -> Doc:
    policies = sorted(c.head.state.policies.values(), key=lambda p: p.seq)
    chunk, token = page(policies, r.maxResults, r.nextToken)
    return {"schedulingPolicies": [{"arn": p.arn} for p in chunk], "nextToken": token}


async def get_snapshot(c: Call, r: m.GetJobQueueSnapshotRequest) -> Doc:
    return queue_snapshot(c.head.state, resolve_queue(c.head.state, r.jobQueue), now_ms())


def queue_snapshot(state: State, queue: JobQueue, now: int) -> Doc:
    """GetJobQueueSnapshot's answer: the first 100 RUNNABLE jobs in dispatch order and what the
    queue uses now (per share, the top 20, on a fair-share queue; on a queue with quota shares,
    each share's first job and every share's use: core/quota_front.py)."""
    running = running_by_queue(state, now).get(queue.name) if queue.policy else None
    quota = quota_snapshot(state, queue)
    front = quota.front if quota is not None else front_of_queue(state, queue, now, running)
    utilization: Doc = {"totalCapacityUsage": [_vcpus(_in_use(state, queue))], "lastUpdatedAt": now}
    if running is not None or queue.policy is not None:
        held = running.held if running is not None else {}
        top = sorted(held.items(), key=lambda item: (-item[1], item[0]))[:TOP_SHARES]
        utilization["fairshareUtilization"] = {
            "activeShareCount": sum(1 for cpu in held.values() if cpu > 0),
            "topCapacityUtilization": [
                {"shareIdentifier": share, "capacityUsage": [_vcpus(cpu)]} for share, cpu in top
            ],
        }
    answer: Doc = {
        "frontOfQueue": {"jobs": [_summary(state, job) for job in front], "lastUpdatedAt": now},
        "queueUtilization": utilization,
    }
    if quota is not None:
        answer["frontOfQuotaShares"] = {
            "quotaShares": {
                name: [_summary(state, job)] for name, job in sorted(quota.firsts.items())
            },
            "lastUpdatedAt": now,
        }
        utilization["quotaShareUtilization"] = {
            "topCapacityUtilization": [
                {
                    "quotaShareName": use.name,
                    "capacityUsage": [
                        {"capacityUnit": unit, "quantity": amount} for unit, amount in use.usage
                    ],
                }
                for use in quota.usage
            ]
        }
    return answer


def _summary(state: State, job: Job) -> Doc:
    """A FrontOfQueueJobSummary (and FrontOfQuotaShareJobSummary): the job and since when it is
    RUNNABLE (its creation after a head restart)."""
    since = state.runnable_since.get(job.job_id, job.created_at)
    return {"jobArn": state.arn("job", job.job_id), "earliestTimeAtPosition": since}


def _vcpus(cpu_milli: int) -> Doc:
    return {"capacityUnit": "VCPU", "quantity": cpu_milli / 1000}


def _in_use(state: State, queue: JobQueue) -> int:
    used = 0
    for node in state.nodes.values():
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is not None and job.queue == queue.name and job.attempts:
                used += job.attempts[-1].cpu_milli
    return used
