"""The AWS Batch operations: each takes a validated request model and returns AWS's response.

Writes become core events applied through the loop (``await head.loop.call``): they return only
once durable, and a refused one raises ClientError having changed nothing. Reads look at the
state directly — the loop task is the only writer, and a handler never awaits mid-read.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import chain, islice
from typing import Any

from hpcbatch.core import events as ev
from hpcbatch.core.explain import Memo
from hpcbatch.core.model import Job, JobStatus
from hpcbatch.core.quota_shares import resolve_share
from hpcbatch.core.resolve import resolve_ce, resolve_definition, resolve_queue
from hpcbatch.core.resources import list_tags
from hpcbatch.core.state import State
from hpcbatch.errors import NotFoundError
from hpcbatch.head.api import consumables, fairshare_ops, shapes, translate
from hpcbatch.head.api import models as m
from hpcbatch.head.api.paging import next_token, page, window
from hpcbatch.head.auth import policy
from hpcbatch.head.auth.identify import Principal
from hpcbatch.head.loop import now_ms
from hpcbatch.head.service import Head

Doc = dict[str, Any]


@dataclass(frozen=True)
class Call:
    head: Head
    request_id: str
    principal: Principal  # who is calling (head/auth/identify.py)
    strict: bool = False
    workdir: str | None = None  # the x-hpcbatch-workdir header as sent (translate.workdir_of)

    @property
    def cause(self) -> str:
        """The journal's cause of what this request changes: the request and who made it."""
        return f"api:{self.request_id} by {self.principal.label}"


async def create_ce(c: Call, r: m.CreateComputeEnvironmentRequest) -> Doc:
    head = c.head
    await head.loop.call(
        translate.create_ce(r, c.cause, now_ms(), head.machine, head.ce_hosts.pool_names)
    )
    await head.capacity_changed()
    ce = c.head.state.ces[r.computeEnvironmentName]
    return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}


async def update_ce(c: Call, r: m.UpdateComputeEnvironmentRequest) -> Doc:
    head = c.head
    kind = resolve_ce(head.state, r.computeEnvironment).kind
    pools = head.ce_hosts.pool_names
    await head.loop.call(translate.update_ce(r, kind, c.cause, now_ms(), head.machine, pools))
    await head.capacity_changed()
    ce = resolve_ce(c.head.state, r.computeEnvironment)
    return {"computeEnvironmentName": ce.name, "computeEnvironmentArn": ce.arn}


async def delete_ce(c: Call, r: m.DeleteComputeEnvironmentRequest) -> Doc:
    await c.head.loop.call(
        ev.DeleteComputeEnvironment(cause=c.cause, now=now_ms(), ref=r.computeEnvironment)
    )
    await c.head.capacity_changed()
    return {}


async def describe_ces(c: Call, r: m.DescribeComputeEnvironmentsRequest) -> Doc:
    state = c.head.state
    ces = sorted(state.ces.values(), key=lambda ce: ce.seq)
    if r.computeEnvironments:
        wanted = {m.ref_name(x) for x in r.computeEnvironments}
        ces = [ce for ce in ces if ce.name in wanted]
    chunk, token = page(ces, r.maxResults, r.nextToken)
    return {
        "computeEnvironments": [
            shapes.compute_environment(state, ce, c.head.ce_status(ce)) for ce in chunk
        ],
        "nextToken": token,
    }


async def create_queue(c: Call, r: m.CreateJobQueueRequest) -> Doc:
    await c.head.loop.call(translate.create_queue(r, c.cause, now_ms()))
    queue = c.head.state.queues[r.jobQueueName]
    return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}


async def update_queue(c: Call, r: m.UpdateJobQueueRequest) -> Doc:
    await c.head.loop.call(translate.update_queue(r, c.cause, now_ms()))
    queue = resolve_queue(c.head.state, r.jobQueue)
    return {"jobQueueName": queue.name, "jobQueueArn": queue.arn}


async def delete_queue(c: Call, r: m.DeleteJobQueueRequest) -> Doc:
    await c.head.loop.call(ev.DeleteJobQueue(cause=c.cause, now=now_ms(), ref=r.jobQueue))
    return {}


async def describe_queues(c: Call, r: m.DescribeJobQueuesRequest) -> Doc:
    state = c.head.state
    queues = sorted(state.queues.values(), key=lambda q: q.seq)
    if r.jobQueues:
        wanted = {m.ref_name(x) for x in r.jobQueues}
        queues = [q for q in queues if q.name in wanted]
    chunk, token = page(queues, r.maxResults, r.nextToken)
    return {"jobQueues": [shapes.job_queue(state, q) for q in chunk], "nextToken": token}


async def register_definition(c: Call, r: m.RegisterJobDefinitionRequest) -> Doc:
    event = translate.register_definition(r, c.cause, now_ms(), c.principal.caller)
    await c.head.loop.call(event)
    latest = max(c.head.state.definitions[r.jobDefinitionName].values(), key=lambda d: d.revision)
    return {
        "jobDefinitionName": latest.name,
        "jobDefinitionArn": latest.arn,
        "revision": latest.revision,
    }


async def deregister_definition(c: Call, r: m.DeregisterJobDefinitionRequest) -> Doc:
    await c.head.loop.call(
        ev.DeregisterJobDefinition(
            cause=c.cause, now=now_ms(), ref=r.jobDefinition, caller=c.principal.caller
        )
    )
    return {}


async def describe_definitions(c: Call, r: m.DescribeJobDefinitionsRequest) -> Doc:
    state = c.head.state
    found = [d for revs in state.definitions.values() for d in revs.values()]
    if r.jobDefinitions:
        wanted = set()
        for ref in r.jobDefinitions:
            try:
                wanted.add(resolve_definition(state, ref).arn)
            except NotFoundError:
                continue
        found = [d for d in found if d.arn in wanted]
    if r.jobDefinitionName:
        found = [d for d in found if d.name == r.jobDefinitionName]
    if r.status:
        found = [d for d in found if d.status == r.status]
    found.sort(key=lambda d: (d.name, d.revision))
    chunk, token = page(found, r.maxResults, r.nextToken)
    return {"jobDefinitions": [shapes.job_definition(d) for d in chunk], "nextToken": token}


async def submit_job(c: Call, r: m.SubmitJobRequest) -> Doc:
    job_id = str(uuid.uuid4())
    workdir = translate.workdir_of(c.workdir)
    event = translate.submit_job(
        r, job_id, c.cause, now_ms(), c.strict, workdir, c.principal.caller
    )
    await c.head.loop.call(event)
    return {"jobArn": c.head.state.arn("job", job_id), "jobName": r.jobName, "jobId": job_id}


async def describe_jobs(c: Call, r: m.DescribeJobsRequest) -> Doc:
    state = c.head.state
    reservations = c.head.loop.plan.reservations
    jobs = [state.jobs[i] for i in dict.fromkeys(r.jobs) if i in state.jobs]
    memo = Memo()  # what the jobs' explanations share, once per request
    return {"jobs": [shapes.job_detail(state, j, reservations, memo) for j in jobs]}


async def cancel_job(c: Call, r: m.CancelJobRequest) -> Doc:
    await c.head.loop.call(
        ev.CancelJob(cause=c.cause, now=now_ms(), job_id=r.jobId, reason=r.reason)
    )
    return {}


async def terminate_job(c: Call, r: m.TerminateJobRequest) -> Doc:
    await c.head.loop.call(
        ev.TerminateJob(cause=c.cause, now=now_ms(), job_id=r.jobId, reason=r.reason)
    )
    return {}


async def cancel_jobs(c: Call, r: m.CancelJobsRequest) -> Doc:
    return await _bulk(c, r, "CancelJobs", ev.CancelJob)


async def terminate_jobs(c: Call, r: m.TerminateJobsRequest) -> Doc:
    return await _bulk(c, r, "TerminateJobs", ev.TerminateJob)


async def _bulk(
    c: Call,
    r: m.CancelJobsRequest,
    operation: str,
    event_type: type[ev.CancelJob] | type[ev.TerminateJob],
) -> Doc:
    """Each id as its single operation would act on it (the same event, the same owner check),
    all in one batch of the loop, with AWS's per-job answer: ``successful`` (an unknown id
    too, as AWS counts it) and ``errors`` [{job, code, message}] for a malformed id
    (``ValidationException``), a job the caller may not touch (``AccessDenied``) or one the
    core refused. An id given twice is acted on and reported once."""
    state = c.head.state
    verb = policy.BULK_JOB_OPERATIONS[operation]
    errors: list[Doc] = []
    accepted: list[str] = []
    for job_id in dict.fromkeys(r.jobs):
        problem = m.job_id_problem(job_id)
        job = state.jobs.get(job_id)
        refusal = None if job is None else policy.job_refusal(c.principal, job, operation, verb)
        if problem is not None:
            at = f"jobs[{r.jobs.index(job_id)}]"
            errors.append(_job_error(job_id, "ValidationException", f"{at}: {problem}"))
        elif refusal is not None:
            errors.append(_job_error(job_id, "AccessDenied", refusal))
        else:
            accepted.append(job_id)
    now = now_ms()
    events = [event_type(cause=c.cause, now=now, job_id=i, reason=r.reason) for i in accepted]
    successful: list[str] = []
    for job_id, outcome in zip(accepted, await c.head.loop.call_all(events), strict=True):
        if outcome is None:
            successful.append(job_id)
        else:
            errors.append(_job_error(job_id, outcome.aws_type, outcome.message))
    return {"successful": successful, "errors": errors}


def _job_error(job_id: str, code: str, message: str) -> Doc:
    return {"job": job_id, "code": code, "message": message}


async def tag_resource(c: Call, r: m.TagResourceRequest) -> Doc:
    await c.head.loop.call(
        ev.TagResource(cause=c.cause, now=now_ms(), arn=r.resourceArn, tags=dict(r.tags))
    )
    return {}


async def untag_resource(c: Call, r: m.UntagResourceRequest) -> Doc:
    await c.head.loop.call(
        ev.UntagResource(cause=c.cause, now=now_ms(), arn=r.resourceArn, keys=tuple(r.tagKeys))
    )
    return {}


async def list_tags_for_resource(c: Call, r: m.ListTagsForResourceRequest) -> Doc:
    return {"tags": list_tags(c.head.state, r.resourceArn)}


def _glob(pattern: str, value: str) -> bool:
    p, v = pattern.lower(), value.lower()
    return v.startswith(p[:-1]) if p.endswith("*") else v == p


def _filter(c: Call, job: Job, name: str, value: str) -> bool:
    if name == "JOB_NAME":
        return _glob(value, job.name)
    if name == "JOB_DEFINITION":
        definition = job.definition_arn.rpartition("/")[2]
        target = m.ref_name(value)
        return _glob(target, definition) or _glob(target, definition.partition(":")[0])
    if name == "BEFORE_CREATED_AT":
        return job.created_at < int(value)
    if name == "AFTER_CREATED_AT":
        return job.created_at > int(value)
    top = c.head.state.jobs.get(job.parent_id) if job.parent_id else job
    return _glob(value, str((top.echo if top else {}).get("shareIdentifier", "")))


def list_owner(state: State, r: m.ListJobsRequest) -> str | None:
    """Whose listing ListJobs reads: a queue, an array parent or a multi-node parent (their
    children and nodes are listed under the parent's id); None when the id names no such job,
    which AWS answers with an empty list."""
    if r.jobQueue is not None:
        return resolve_queue(state, r.jobQueue).name
    parent = state.jobs.get(r.arrayJobId or r.multiNodeJobId or "")
    if parent is None:
        return None
    wanted = parent.is_array_parent if r.arrayJobId is not None else parent.multinode is not None
    return parent.job_id if wanted else None


async def list_jobs(c: Call, r: m.ListJobsRequest) -> Doc:
    state = c.head.state
    owner = list_owner(state, r)
    listing = state.listing.get(owner, {}) if owner is not None else {}
    if r.filters:
        statuses = list(JobStatus)
    else:
        statuses = [JobStatus(r.jobStatus)] if r.jobStatus else [JobStatus.RUNNING]
    buckets = [listing.get(s, {}) for s in statuses]
    if r.filters:
        jobs = [state.jobs[i] for bucket in buckets for i in bucket]
        for f in r.filters:
            jobs = [j for j in jobs if _filter(c, j, f.name, f.values[0])]
        chunk, token = page(jobs, r.maxResults, r.nextToken)
    else:  # read only the page's jobs: a queue may hold a million (docs/benchmarks.md)
        start, size = window(r.maxResults, r.nextToken)
        ids = islice(chain.from_iterable(buckets), start, start + size)
        chunk = [state.jobs[i] for i in ids]
        token = next_token(start + size, sum(map(len, buckets)))
    reservations = c.head.loop.plan.reservations
    memo = Memo()  # what the jobs' explanations share, once per request
    return {
        "jobSummaryList": [shapes.job_summary(state, j, reservations, memo) for j in chunk],
        "nextToken": token,
    }


async def create_quota_share(c: Call, r: m.CreateQuotaShareRequest) -> Doc:
    event = translate.create_quota_share(r, c.cause, now_ms())
    await c.head.loop.call(event)
    queue = resolve_queue(c.head.state, r.jobQueue)
    share = c.head.state.quota_shares[f"{queue.name}/{r.quotaShareName}"]
    return {"quotaShareName": share.name, "quotaShareArn": share.arn}


async def describe_quota_share(c: Call, r: m.DescribeQuotaShareRequest) -> Doc:
    state = c.head.state
    share = resolve_share(state, r.quotaShareArn)
    return {**shapes.quota_share(state, share), "tags": share.tags}


async def list_quota_shares(c: Call, r: m.ListQuotaSharesRequest) -> Doc:
    state = c.head.state
    queue = resolve_queue(state, r.jobQueue)
    shares = sorted(
        (s for s in state.quota_shares.values() if s.queue == queue.name), key=lambda s: s.seq
    )
    chunk, token = page(shares, r.maxResults, r.nextToken)
    return {"quotaShares": [shapes.quota_share(state, s) for s in chunk], "nextToken": token}


async def update_quota_share(c: Call, r: m.UpdateQuotaShareRequest) -> Doc:
    await c.head.loop.call(translate.update_quota_share(r, c.cause, now_ms()))
    share = resolve_share(c.head.state, r.quotaShareArn)
    return {"quotaShareName": share.name, "quotaShareArn": share.arn}


async def delete_quota_share(c: Call, r: m.DeleteQuotaShareRequest) -> Doc:
    await c.head.loop.call(ev.DeleteQuotaShare(cause=c.cause, now=now_ms(), ref=r.quotaShareArn))
    return {}


Handler = Callable[[Call, Any], Awaitable[Doc]]

HANDLERS: dict[str, Handler] = {
    "CreateComputeEnvironment": create_ce,
    "UpdateComputeEnvironment": update_ce,
    "DeleteComputeEnvironment": delete_ce,
    "DescribeComputeEnvironments": describe_ces,
    "CreateJobQueue": create_queue,
    "UpdateJobQueue": update_queue,
    "DeleteJobQueue": delete_queue,
    "DescribeJobQueues": describe_queues,
    "RegisterJobDefinition": register_definition,
    "DeregisterJobDefinition": deregister_definition,
    "DescribeJobDefinitions": describe_definitions,
    "SubmitJob": submit_job,
    "DescribeJobs": describe_jobs,
    "ListJobs": list_jobs,
    "CancelJob": cancel_job,
    "TerminateJob": terminate_job,
    "CancelJobs": cancel_jobs,
    "TerminateJobs": terminate_jobs,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    **consumables.HANDLERS,
    "CreateQuotaShare": create_quota_share,
    "DescribeQuotaShare": describe_quota_share,
    "ListQuotaShares": list_quota_shares,
    "UpdateQuotaShare": update_quota_share,
    "DeleteQuotaShare": delete_quota_share,
    "CreateSchedulingPolicy": fairshare_ops.create_policy,
    "DescribeSchedulingPolicies": fairshare_ops.describe_policies,
    "ListSchedulingPolicies": fairshare_ops.list_policies,
    "UpdateSchedulingPolicy": fairshare_ops.update_policy,
    "DeleteSchedulingPolicy": fairshare_ops.delete_policy,
    "GetJobQueueSnapshot": fairshare_ops.get_snapshot,
}
