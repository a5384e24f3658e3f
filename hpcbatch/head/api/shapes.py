"""State objects as AWS Batch response shapes (DescribeJobs' JobDetail, JobSummary, ...).

Field names and units are AWS's: ARNs for queues and definitions, epoch milliseconds for times.
hpcbatch's own facts (the node an attempt ran on, why a job started) go under ``hpcbatch``:
boto3 ignores members it does not know, and the CLI shows them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hpcbatch.core.attempts import declared_environment
from hpcbatch.core.ce_capacity import ce_status, connected_vcpus
from hpcbatch.core.consumables import needs
from hpcbatch.core.explain import Memo, explain
from hpcbatch.core.model import (
    TERMINAL,
    Attempt,
    ComputeEnvironment,
    Job,
    JobDefinition,
    JobQueue,
    JobSpec,
    JobStatus,
    MultiNodeSpec,
    NodeRange,
    QuotaShare,
    attempt_id,
    format_vcpus,
)
from hpcbatch.core.plan import Reservation
from hpcbatch.core.shared_capacity import ce_ceiling
from hpcbatch.core.state import State
from hpcbatch.head.loop import now_ms

Doc = dict[str, Any]


def _drop_none(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if v is not None}


def compute_environment(
    state: State, ce: ComputeEnvironment, decided: tuple[str, str] | None = None
) -> Doc:
    """``decided``: ``(status, statusReason)`` as the head decided it (``Head.ce_status``);
    None: from its nodes now (``core/ce_capacity.ce_status``). For an
    API-made CE, ``computeResources`` carries its bounds and, as ``desiredvCpus``, the vCPUs
    its connected nodes have (AWS reports the capacity it is running there)."""
    resources = dict(ce.echo.get("computeResources") or {})
    resources["type"] = ce.kind
    if ce.max_vcpus is not None:
        resources["minvCpus"] = ce.min_vcpus
        resources["maxvCpus"] = ce.max_vcpus
        connected = connected_vcpus(state, ce.name)
        if ce_ceiling(ce) is not None:  # an SSH CE's jobs never hold more (shared_capacity)
            connected = min(connected, ce.max_vcpus)
        resources["desiredvCpus"] = connected
    elif ce.ce_type == "MANAGED":  # the config's nodes (the built-in `local`): all of them
        resources.setdefault("minvCpus", 0)
        resources["maxvCpus"] = sum(
            n.capacity.cpu_milli // 1000 for n in state.nodes.values() if n.ce == ce.name
        )
        resources["desiredvCpus"] = connected_vcpus(state, ce.name)
    status, reason = decided or ce_status(state, ce)
    doc = {
        **ce.echo,
        "computeEnvironmentName": ce.name,
        "computeEnvironmentArn": ce.arn,
        # ECS's cluster of a CE is, here, the CE's own pool of nodes
        "ecsClusterArn": ce.arn.replace(":compute-environment/", ":node-pool/", 1),
        "type": ce.ce_type,
        "state": ce.state,
        "status": status,
        "statusReason": reason,
        "computeResources": resources,
        "tags": ce.tags,
    }
    if ce.ce_type == "UNMANAGED":  # as AWS: an UNMANAGED CE has no computeResources
        del doc["computeResources"]
    return doc


def quota_share(state: State, share: QuotaShare) -> Doc:
    """AWS's QuotaShareDetail (DescribeQuotaShare adds the tags)."""
    sharing: Doc = {"strategy": share.strategy}
    if share.strategy == "LEND_AND_BORROW":
        sharing["borrowLimit"] = share.borrow_limit
    return {
        "quotaShareName": share.name,
        "quotaShareArn": share.arn,
        "jobQueueArn": state.arn("job-queue", share.queue),
        "capacityLimits": [
            {"maxCapacity": value, "capacityUnit": unit} for unit, value in share.limits.items()
        ],
        "resourceSharingConfiguration": sharing,
        "preemptionConfiguration": {
            "inSharePreemption": "ENABLED" if share.in_share_preemption else "DISABLED"
        },
        "state": share.state,
        "status": share.status,
    }


def job_queue(state: State, queue: JobQueue) -> Doc:
    order = [
        {"order": i + 1, "computeEnvironment": state.arn("compute-environment", name)}
        for i, name in enumerate(queue.ce_order)
    ]
    return {
        **queue.echo,
        "jobQueueName": queue.name,
        "jobQueueArn": queue.arn,
        "state": queue.state,
        "status": queue.status,
        "statusReason": "JobQueue Healthy",
        "priority": queue.priority,
        **(
            {"schedulingPolicyArn": state.arn("scheduling-policy", linked)}
            if (linked := queue.policy or queue.quota_policy)
            else {}
        ),
        "computeEnvironmentOrder": order,
        "jobStateTimeLimitActions": [
            {
                "reason": a.reason,
                "state": a.state,
                "maxTimeSeconds": a.max_time_s,
                "action": a.action,
            }
            for a in queue.time_limit_actions
        ],
        "tags": queue.tags,
    }


def job_definition(definition: JobDefinition) -> Doc:
    return {
        **definition.echo,
        "jobDefinitionName": definition.name,
        "jobDefinitionArn": definition.arn,
        "revision": definition.revision,
        "status": definition.status,
        "type": definition.def_type,
        "parameters": definition.parameters,
        "tags": definition.tags,
    }


def resource_properties(need: dict[str, int]) -> Doc | None:
    """AWS's ConsumableResourceProperties of resolved needs (resource names); None: none."""
    if not need:
        return None
    return {
        "consumableResourceList": [
            {"consumableResource": name, "quantity": quantity} for name, quantity in need.items()
        ]
    }


def resource_requirements(spec: JobSpec) -> list[Doc]:
    r = spec.resources
    out = [
        {"type": "VCPU", "value": format_vcpus(r.cpu_milli)},
        {"type": "MEMORY", "value": str(r.memory_mib)},
    ]
    if r.gpus:
        out.append({"type": "GPU", "value": str(r.gpus)})
    return out


def placement_arns(state: State, job: Job, attempt: Attempt) -> Doc:
    """Where ECS names the instance and the task: hpcbatch's node and attempt, as ARNs
    (``...:node/local-1``, ``...:attempt/<job id>/1``)."""
    return {
        "containerInstanceArn": state.arn("node", attempt.node),
        "taskArn": state.arn("attempt", attempt_id(job.job_id, attempt.number)),
    }


def _attempt(state: State, job: Job, attempt: Attempt) -> Doc:
    return _drop_none(
        {
            "container": _drop_none(
                {
                    "exitCode": attempt.exit_code,
                    "reason": attempt.reason,
                    "logStreamName": attempt.log_stream,
                    **placement_arns(state, job, attempt),
                }
            ),
            "startedAt": attempt.started_at,
            "stoppedAt": attempt.stopped_at,
            "statusReason": attempt.reason,
        }
    )


def _attempts(state: State, job: Job) -> list[Doc]:
    """Attempts that reached RUNNING or ended, as AWS lists them."""
    return [
        _attempt(state, job, a)
        for a in job.attempts
        if a.started_at is not None or a.stopped_at is not None
    ]


def status_reason(
    state: State,
    job: Job,
    reservations: tuple[Reservation, ...],
    memo: Memo | None = None,
) -> str | None:
    if job.status in (JobStatus.PENDING, JobStatus.RUNNABLE):
        # now_ms: a fair-share queue's reason quotes each share's usage as of this moment
        return explain(state, job, reservations, now_ms(), memo)
    return job.status_reason


def _array(state: State, job: Job) -> Doc | None:
    if job.is_array_parent:
        counts = state.child_counts.get(job.job_id, {})
        summary = {s.value: counts.get(s, 0) for s in JobStatus}
        return {"size": job.array_size, "statusSummary": summary}
    if job.array_index is not None:
        return {"index": job.array_index}
    return None


def _container_properties(spec: JobSpec) -> Doc:
    return _drop_none(
        {
            "command": list(spec.command),
            "environment": [{"name": k, "value": v} for k, v in spec.environment],
            "resourceRequirements": resource_requirements(spec),
            "user": spec.user,
        }
    )


def _target_nodes(node_range: NodeRange) -> str:
    if node_range.first == node_range.last and not node_range.open_end:
        return str(node_range.first)
    return f"{node_range.first}:" + ("" if node_range.open_end else str(node_range.last))


def node_properties(multinode: MultiNodeSpec) -> Doc:
    """A multi-node parent's nodes as they run: the definition's ranges, overrides applied."""
    return {
        "numNodes": multinode.num_nodes,
        "mainNode": multinode.main_node,
        "nodeRangeProperties": [
            _drop_none(
                {
                    "targetNodes": _target_nodes(r),
                    "container": _container_properties(r.spec),
                    "consumableResourceProperties": resource_properties(dict(r.spec.consumables)),
                }
            )
            for r in multinode.ranges
        ],
    }


def _parent_multinode(state: State, job: Job) -> MultiNodeSpec | None:
    """The MultiNodeSpec of a node job's parent (None for any other job)."""
    if job.node_index is None or job.parent_id is None:
        return None
    parent = state.jobs.get(job.parent_id)
    return parent.multinode if parent is not None else None


def _node_details(state: State, job: Job) -> Doc | None:
    multinode = _parent_multinode(state, job)
    if multinode is None:
        return None
    return {"nodeIndex": job.node_index, "isMainNode": job.node_index == multinode.main_node}


def job_detail(
    state: State,
    job: Job,
    reservations: tuple[Reservation, ...] = (),
    memo: Memo | None = None,
) -> Doc:
    top = state.jobs[job.parent_id] if job.parent_id else job
    spec = replace(job.spec, environment=declared_environment(state, job))  # + a gang's fabric
    latest = job.attempts[-1] if job.attempts else None
    container = _drop_none(
        {
            **_container_properties(spec),
            "exitCode": latest.exit_code if latest and job.status in TERMINAL else None,
            "reason": latest.reason if latest and job.status in TERMINAL else None,
            "logStreamName": latest.log_stream if latest else None,
            **(placement_arns(state, job, latest) if latest else {}),
        }
    )
    retry: Doc = {"attempts": spec.retry.attempts}
    if spec.retry.rules:
        retry["evaluateOnExit"] = [
            _drop_none(
                {
                    "action": r.action,
                    "onExitCode": r.on_exit_code,
                    "onReason": r.on_reason,
                    "onStatusReason": r.on_status_reason,
                }
            )
            for r in spec.retry.rules
        ]
    doc: Doc = {
        **top.echo,
        "jobArn": state.arn("job", job.job_id),
        "jobName": job.name,
        "jobId": job.job_id,
        "jobQueue": state.arn("job-queue", job.queue),
        "status": job.status.value,
        "statusReason": status_reason(state, job, reservations, memo),
        "attempts": [] if job.is_array_parent else _attempts(state, job),
        "createdAt": job.created_at,
        "startedAt": job.started_at,
        "stoppedAt": job.stopped_at,
        "dependsOn": [_drop_none({"jobId": d.job_id, "type": d.dep_type}) for d in top.depends_on],
        "jobDefinition": job.definition_arn,
        "parameters": top.parameters,
        # A multi-node parent runs nothing itself: its nodes do, as nodeProperties shows.
        "container": None if job.multinode else container,
        "nodeProperties": node_properties(job.multinode) if job.multinode else None,
        "nodeDetails": _node_details(state, job),
        "consumableResourceProperties": resource_properties(needs(job)),
        "retryStrategy": retry,
        "tags": top.tags,
        "schedulingPriority": spec.priority,
        "isCancelled": job.is_cancelled,
        "isTerminated": job.is_terminated,
        "arrayProperties": _array(state, job),
        "timeout": {"attemptDurationSeconds": spec.timeout_s} if spec.timeout_s else None,
        "platformCapabilities": top.echo.get("platformCapabilities", ["EC2"]),
        "hpcbatch": _extras(job),
    }
    return _drop_none(doc)


def _extras(job: Job) -> Doc:
    latest = job.attempts[-1] if job.attempts else None
    return _drop_none(
        {
            "node": latest.node if latest else None,
            "attemptId": attempt_id(job.job_id, latest.number) if latest else None,
            "startReason": job.start_reason,
            "waitingOn": sorted(job.waiting_on) or None,
            "workdir": job.spec.workdir,
            "owner": job.owner,
        }
    )


def job_summary(
    state: State,
    job: Job,
    reservations: tuple[Reservation, ...] = (),
    memo: Memo | None = None,
) -> Doc:
    latest = job.attempts[-1] if job.attempts else None
    array = _array(state, job)
    return _drop_none(
        {
            "jobArn": state.arn("job", job.job_id),
            "jobId": job.job_id,
            "jobName": job.name,
            "createdAt": job.created_at,
            "scheduledAt": latest.scheduled_at if latest else None,
            "status": job.status.value,
            "statusReason": status_reason(state, job, reservations, memo),
            "startedAt": job.started_at,
            "stoppedAt": job.stopped_at,
            "container": _drop_none({"exitCode": latest.exit_code, "reason": latest.reason})
            if latest and job.status in TERMINAL
            else None,
            "arrayProperties": _drop_none(
                {"size": (array or {}).get("size"), "index": job.array_index}
            )
            if array
            else None,
            "nodeProperties": _node_summary(state, job),
            "jobDefinition": job.definition_arn,
            "shareIdentifier": job.share,
            "capacityUsage": _capacity_usage(job),
            "isCancelled": job.is_cancelled,
            "isTerminated": job.is_terminated,
            "hpcbatch": {"owner": job.owner} if job.owner else None,
        }
    )


def _capacity_usage(job: Job) -> list[Doc]:
    """AWS's ``capacityUsage``: the vCPUs the job asks for (a multi-node parent: all its
    nodes'; an array parent: one child's, as each child asks for that)."""
    if job.multinode is not None:
        cpu_milli = sum(
            (r.last - r.first + 1) * r.spec.resources.cpu_milli for r in job.multinode.ranges
        )
    else:
        cpu_milli = job.spec.resources.cpu_milli
    return [{"capacityUnit": "VCPU", "quantity": cpu_milli / 1000}]


def _node_summary(state: State, job: Job) -> Doc | None:
    """JobSummary's NodePropertiesSummary: the node count, and on a node its index and role."""
    if job.multinode is not None:
        return {"numNodes": job.multinode.num_nodes}
    multinode = _parent_multinode(state, job)
    if multinode is None:
        return None
    return {
        "isMainNode": job.node_index == multinode.main_node,
        "numNodes": multinode.num_nodes,
        "nodeIndex": job.node_index,
    }
