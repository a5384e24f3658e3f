"""Step handlers for compute environments, job queues, job definitions and tags.

Each handler checks everything first and changes state only when the whole request is valid, so
a refused request leaves nothing half made.
"""

from __future__ import annotations

from dataclasses import replace

from hpcbatch.core import events as ev
from hpcbatch.core.ce_capacity import HEAD_NODE_KINDS, local_node_name
from hpcbatch.core.commands import Command
from hpcbatch.core.consumable_resources import LIST_FIELD, resolve_needs
from hpcbatch.core.jobs import fail_job
from hpcbatch.core.model import (
    ACTIVE,
    TERMINAL,
    ComputeEnvironment,
    JobDefinition,
    JobQueue,
    JobSpec,
    MultiNodeSpec,
)
from hpcbatch.core.owners import check_definition_users
from hpcbatch.core.policies import queue_policy, set_queue_policy
from hpcbatch.core.quota_shares import SHARE_MARK, drop_queue_shares
from hpcbatch.core.resolve import resolve_ce, resolve_definition, resolve_queue
from hpcbatch.core.retire import retire
from hpcbatch.core.state import State
from hpcbatch.core.usage import usage_key
from hpcbatch.errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError

MAX_CES_PER_QUEUE = 3


def create_ce(state: State, e: ev.CreateComputeEnvironment) -> None:
    if e.name in state.ces:
        raise ConflictError(f"computeEnvironmentName: {e.name!r} already exists")
    if e.kind in HEAD_NODE_KINDS and e.max_vcpus is not None:
        node = state.nodes.get(local_node_name(e.name))
        if node is not None:
            raise ConflictError(
                f"computeEnvironmentName: {e.name!r} would name its node {node.name}, which "
                f"is already a node of {node.ce}; choose another name"
            )
    state.ces[e.name] = ComputeEnvironment(
        name=e.name,
        arn=state.arn("compute-environment", e.name),
        ce_type=e.ce_type,
        kind=e.kind,
        state=e.state,
        seq=state.next_seq(),
        echo=dict(e.echo),
        tags=dict(e.tags),
        max_vcpus=e.max_vcpus,
        min_vcpus=e.min_vcpus,
        desired_vcpus=e.desired_vcpus,
    )
    state.changes.touch("compute_environment", e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", f"compute environment {e.kind} {e.state}")


def update_ce(state: State, e: ev.UpdateComputeEnvironment) -> None:
    ce = resolve_ce(state, e.ref)
    _not_deleting(ce, "computeEnvironment")
    bounds = _updated_bounds(ce, e)
    if e.state is not None:
        ce.state = e.state
    if ce.max_vcpus is not None:
        ce.min_vcpus, ce.desired_vcpus, ce.max_vcpus = bounds
    # computeResources merges, as AWS's update does: what the request leaves out stays
    resources = {**(ce.echo.get("computeResources") or {}), **e.echo.get("computeResources", {})}
    ce.echo.update(e.echo)
    if resources:
        ce.echo["computeResources"] = resources
    state.changes.touch("compute_environment", ce.name)
    detail = f"state {ce.state}"
    if ce.max_vcpus is not None:
        detail += f", vCPUs min {ce.min_vcpus} max {ce.max_vcpus}"
    state.journal(e.now, e.cause, ce.name, "UPDATED", detail)


def _updated_bounds(
    ce: ComputeEnvironment, e: ev.UpdateComputeEnvironment
) -> tuple[int, int | None, int]:
    """(min, desired, max) after ``e``, checked against each other as stored + updated."""
    low = ce.min_vcpus if e.min_vcpus is None else e.min_vcpus
    high = ce.max_vcpus if e.max_vcpus is None else e.max_vcpus
    desired = e.desired_vcpus
    if high is None:  # nodes from the config: the bounds are only echoed
        return low, desired, 0
    if desired is None and ce.desired_vcpus is not None:  # the stored one follows new bounds
        desired = min(max(ce.desired_vcpus, low), high)
    if low > high:
        raise ValidationError(
            "computeResources.maxvCpus", f"must be at least minvCpus ({low}) (got {high})"
        )
    if desired is not None and not low <= desired <= high:
        raise ValidationError(
            "computeResources.desiredvCpus",
            f"must be from minvCpus ({low}) to maxvCpus ({high}) (got {desired})",
        )
    return low, desired, high


DELETING_REASON = "its compute environment is being deleted"


def delete_ce(state: State, e: ev.DeleteComputeEnvironment) -> list[Command]:
    """As AWS: a DISABLED CE no queue uses goes at once when none of its nodes runs a job;
    else it is DELETING, its nodes drain for good (core/retire.py) and ``finish_deletions``
    removes it once their jobs have ended."""
    ce = resolve_ce(state, e.ref)
    if ce.status == "DELETING":
        return []  # deleting twice is harmless
    if ce.state != "DISABLED":
        raise ConflictError(
            f"computeEnvironment: {ce.name!r} is {ce.state}; disable it before deleting it"
        )
    users = sorted(q.name for q in state.queues.values() if ce.name in q.ce_order)
    if users:
        raise ConflictError(
            f"computeEnvironment: {ce.name!r} is still used by job queue(s) {', '.join(users)}; "
            "detach it from every queue first"
        )
    members = sorted(n.name for n in state.nodes.values() if n.ce == ce.name)
    if not any(state.nodes[name].attempts for name in members):
        _drop_ce(state, ce, e)
        return []
    ce.status = "DELETING"
    state.changes.touch("compute_environment", ce.name)
    state.journal(e.now, e.cause, ce.name, "DELETING", "its nodes' running jobs end first")
    for name in members:
        retire(state, ev.RetireNode(cause=e.cause, now=e.now, node=name, reason=DELETING_REASON))
    return []


def finish_deletions(state: State, e: ev.Event) -> None:
    """Remove each DELETING CE none of whose nodes holds an attempt any more."""
    for ce in [c for c in state.ces.values() if c.status == "DELETING"]:
        if not any(n.attempts for n in state.nodes.values() if n.ce == ce.name):
            _drop_ce(state, ce, e)


def _drop_ce(state: State, ce: ComputeEnvironment, e: ev.Event) -> None:
    del state.ces[ce.name]
    for node in [n for n in state.nodes.values() if n.ce == ce.name]:
        del state.nodes[node.name]
        state.changes.drop("node", node.name)
    state.changes.drop("compute_environment", ce.name)
    state.journal(e.now, e.cause, ce.name, "DELETED", "")


def _not_deleting(ce: ComputeEnvironment, field: str) -> None:
    if ce.status == "DELETING":
        raise ConflictError(f"{field}: {ce.name!r} is DELETING (it goes once its running jobs end)")


def _check_ce_order(state: State, order: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
    if not 1 <= len(order) <= MAX_CES_PER_QUEUE:
        raise ValidationError(
            "computeEnvironmentOrder",
            f"must list 1 to {MAX_CES_PER_QUEUE} compute environments (got {len(order)})",
        )
    names = []
    for i, (_, ref) in enumerate(sorted(order)):
        field = f"computeEnvironmentOrder[{i}].computeEnvironment"
        ce = resolve_ce(state, ref, field)
        _not_deleting(ce, field)
        names.append(ce.name)
    if len(set(names)) != len(names):
        raise ValidationError("computeEnvironmentOrder", "lists a compute environment twice")
    kinds = {state.ces[n].kind for n in names}
    if len(kinds) > 1:
        raise ValidationError(
            "computeEnvironmentOrder",
            f"mixes compute environment kinds {sorted(kinds)}; a queue's environments must be of one kind",
        )
    return tuple(names)


def create_queue(state: State, e: ev.CreateJobQueue) -> None:
    if e.name in state.queues:
        raise ConflictError(f"jobQueueName: {e.name!r} already exists")
    ce_order = _check_ce_order(state, e.ce_order)
    policy = queue_policy(state, e.policy_arn, None)
    state.queues[e.name] = JobQueue(
        name=e.name,
        arn=state.arn("job-queue", e.name),
        priority=e.priority,
        state=e.state,
        ce_order=ce_order,
        seq=state.next_seq(),
        echo=dict(e.echo),
        tags=dict(e.tags),
        time_limit_actions=e.time_limit_actions,
    )
    if policy is not None:
        set_queue_policy(state.queues[e.name], policy)
    state.changes.touch("queue", e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", f"priority {e.priority} CEs {list(ce_order)}")


def update_queue(state: State, e: ev.UpdateJobQueue) -> None:
    queue = resolve_queue(state, e.ref)
    ce_order = _check_ce_order(state, e.ce_order) if e.ce_order is not None else None
    policy = queue_policy(state, e.policy_arn, queue)
    if policy is not None:
        set_queue_policy(queue, policy)
    if e.priority is not None:
        queue.priority = e.priority
    if e.state is not None:
        queue.state = e.state
    if ce_order is not None:
        queue.ce_order = ce_order
    if e.time_limit_actions is not None:
        queue.time_limit_actions = e.time_limit_actions
    queue.echo.update(e.echo)
    state.changes.touch("queue", queue.name)
    state.journal(
        e.now, e.cause, queue.name, "UPDATED", f"state {queue.state} priority {queue.priority}"
    )


def delete_queue(state: State, e: ev.DeleteJobQueue) -> None:
    queue = resolve_queue(state, e.ref)
    if queue.state != "DISABLED":
        raise ConflictError(
            f"jobQueue: {queue.name!r} is {queue.state}; disable it before deleting it"
        )
    live = [j for j in state.jobs.values() if j.queue == queue.name and j.status in ACTIVE]
    if live:
        raise ConflictError(
            f"jobQueue: {queue.name!r} still has {len(live)} STARTING or RUNNING job(s); "
            "wait for them or terminate them first"
        )
    # As AWS does, deleting a queue ends the jobs still waiting in it.
    for job in [j for j in state.jobs.values() if j.queue == queue.name]:
        if job.status not in TERMINAL:
            fail_job(state, job, e.cause, e.now, f"job queue {queue.name} was deleted", cancel=True)
    del state.queues[queue.name]
    drop_queue_shares(state, queue.name)
    state.runnable.pop(queue.name, None)
    state.fair_runnable.pop(queue.name, None)
    for key in [k for k in state.usage if k[0] == queue.name]:
        del state.usage[key]
        state.changes.drop("share_usage", usage_key(*key))
    if state.run_times.pop(queue.name, None) is not None:
        state.changes.drop("queue_run_time", queue.name)
    state.changes.drop("queue", queue.name)
    state.journal(e.now, e.cause, queue.name, "DELETED", "")


def register_definition(state: State, e: ev.RegisterJobDefinition) -> JobDefinition:
    if (e.def_type == "multinode") != (e.multinode is not None):
        raise ValidationError(
            "nodeProperties", "is required when type is multinode, and only allowed then"
        )
    check_definition_users(e.spec, e.multinode, e.caller)
    spec, multinode = _resolved_needs(state, e)
    revisions = state.definitions.setdefault(e.name, {})
    revision = max(revisions, default=0) + 1
    definition = JobDefinition(
        name=e.name,
        revision=revision,
        arn=state.arn("job-definition", f"{e.name}:{revision}"),
        def_type=e.def_type,
        spec=spec,
        parameters=dict(e.parameters),
        echo=dict(e.echo),
        tags=dict(e.tags),
        multinode=multinode,
        owner=e.caller.user if e.caller is not None else None,
    )
    revisions[revision] = definition
    state.changes.touch("job_definition", f"{e.name}:{revision}")
    state.journal(e.now, e.cause, f"{e.name}:{revision}", "REGISTERED", "")
    return definition


def _resolved_needs(
    state: State, e: ev.RegisterJobDefinition
) -> tuple[JobSpec, MultiNodeSpec | None]:
    """The definition's consumable resources named by name (an ARN resolved), each checked."""
    field = f"consumableResourceProperties.{LIST_FIELD}"
    spec = replace(e.spec, consumables=resolve_needs(state, e.spec.consumables, field))
    if e.multinode is None:
        return spec, None
    ranges = []
    for node_range in e.multinode.ranges:
        at = f"nodeProperties.nodeRangeProperties[{node_range.first}:{node_range.last}].{field}"
        resolved = resolve_needs(state, node_range.spec.consumables, at)
        ranges.append(replace(node_range, spec=replace(node_range.spec, consumables=resolved)))
    return spec, replace(e.multinode, ranges=tuple(ranges))


def deregister_definition(state: State, e: ev.DeregisterJobDefinition) -> None:
    definition = resolve_definition(state, e.ref)
    caller = e.caller
    if caller is not None and not caller.admin and definition.owner != caller.user:
        raise AccessDeniedError(
            f"DeregisterJobDefinition: {definition.name}:{definition.revision} was registered "
            f"by {definition.owner or 'the head'}; only its registrant or an admin may "
            f"deregister it (you are {caller.user!r})"
        )
    definition.status = "INACTIVE"
    key = f"{definition.name}:{definition.revision}"
    state.changes.touch("job_definition", key)
    state.journal(e.now, e.cause, key, "DEREGISTERED", "")


def tag_target(state: State, arn: str) -> tuple[str, str, dict[str, str]]:
    """(kind, key, tags dict) of the resource an ARN names."""
    kind_name = arn.split(":", 5)[-1] if arn.startswith("arn:") else ""
    kind, _, name = kind_name.partition("/")
    if kind == "job-queue" and SHARE_MARK in f"/{name}":
        share = state.quota_shares.get(name.replace(SHARE_MARK, "/", 1))
        if share is not None:
            return "quota_share", share.key, share.tags
    if kind == "job-queue" and name in state.queues:
        return "queue", name, state.queues[name].tags
    if kind == "compute-environment" and name in state.ces:
        return "compute_environment", name, state.ces[name].tags
    if kind == "job-definition":
        def_name, _, rev = name.partition(":")
        found = state.definitions.get(def_name, {}).get(int(rev)) if rev.isdigit() else None
        if found is not None:
            return "job_definition", name, found.tags
    if kind == "scheduling-policy" and name in state.policies:
        return "scheduling_policy", name, state.policies[name].tags
    if kind == "job" and name in state.jobs:
        job = state.jobs[name]
        if job.parent_id is not None:
            raise ValidationError(
                "resourceArn", "array child jobs cannot be tagged; tag the parent"
            )
        return "job", name, job.tags
    raise NotFoundError(f"resourceArn: no resource {arn!r}")


def tag_resource(state: State, e: ev.TagResource) -> None:
    kind, key, tags = tag_target(state, e.arn)
    if len(set(tags) | set(e.tags)) > 50:
        raise ValidationError("tags", "a resource can carry at most 50 tags")
    tags.update(e.tags)
    state.changes.touch(kind, key)
    state.journal(e.now, e.cause, key, "TAGGED", ", ".join(sorted(e.tags)))


def untag_resource(state: State, e: ev.UntagResource) -> None:
    kind, key, tags = tag_target(state, e.arn)
    for k in e.keys:
        tags.pop(k, None)
    state.changes.touch(kind, key)
    state.journal(e.now, e.cause, key, "UNTAGGED", ", ".join(sorted(e.keys)))


def list_tags(state: State, arn: str) -> dict[str, str]:
    return dict(tag_target(state, arn)[2])
