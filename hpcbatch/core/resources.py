"""Step handlers for compute environments, job queues, job definitions and tags.

Each handler checks everything first and changes state only when the whole request is valid, so
a refused request leaves nothing half made.
"""

from __future__ import annotations

from hpcbatch.core import events as ev
from hpcbatch.core.jobs import fail_job
from hpcbatch.core.model import ACTIVE, TERMINAL, ComputeEnvironment, JobDefinition, JobQueue
from hpcbatch.core.owners import check_definition_users
from hpcbatch.core.policies import queue_policy
from hpcbatch.core.resolve import resolve_ce, resolve_definition, resolve_queue
from hpcbatch.core.state import State
from hpcbatch.core.usage import usage_key
from hpcbatch.errors import AccessDeniedError, ConflictError, NotFoundError, ValidationError

MAX_CES_PER_QUEUE = 3


def create_ce(state: State, e: ev.CreateComputeEnvironment) -> None:
    if e.name in state.ces:
        raise ConflictError(f"computeEnvironmentName: {e.name!r} already exists")
    state.ces[e.name] = ComputeEnvironment(
        name=e.name,
        arn=state.arn("compute-environment", e.name),
        ce_type=e.ce_type,
        kind=e.kind,
        state=e.state,
        seq=state.next_seq(),
        echo=dict(e.echo),
        tags=dict(e.tags),
    )
    state.changes.touch("compute_environment", e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", f"compute environment {e.kind} {e.state}")


def update_ce(state: State, e: ev.UpdateComputeEnvironment) -> None:
    ce = resolve_ce(state, e.ref)
    if e.state is not None:
        ce.state = e.state
    ce.echo.update(e.echo)
    state.changes.touch("compute_environment", ce.name)
    state.journal(e.now, e.cause, ce.name, "UPDATED", f"state {ce.state}")


def delete_ce(state: State, e: ev.DeleteComputeEnvironment) -> None:
    ce = resolve_ce(state, e.ref)
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
    busy = [n.name for n in state.nodes.values() if n.ce == ce.name and n.attempts]
    if busy:
        raise ConflictError(
            f"computeEnvironment: {ce.name!r} still runs jobs on {', '.join(sorted(busy))}"
        )
    del state.ces[ce.name]
    for node in [n for n in state.nodes.values() if n.ce == ce.name]:
        del state.nodes[node.name]
        state.changes.drop("node", node.name)
    state.changes.drop("compute_environment", ce.name)
    state.journal(e.now, e.cause, ce.name, "DELETED", "")


def _check_ce_order(state: State, order: tuple[tuple[int, str], ...]) -> tuple[str, ...]:
    if not 1 <= len(order) <= MAX_CES_PER_QUEUE:
        raise ValidationError(
            "computeEnvironmentOrder",
            f"must list 1 to {MAX_CES_PER_QUEUE} compute environments (got {len(order)})",
        )
    names = []
    for i, (_, ref) in enumerate(sorted(order)):
        names.append(
            resolve_ce(state, ref, f"computeEnvironmentOrder[{i}].computeEnvironment").name
        )
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
        policy=policy,
    )
    state.changes.touch("queue", e.name)
    state.journal(e.now, e.cause, e.name, "CREATED", f"priority {e.priority} CEs {list(ce_order)}")


def update_queue(state: State, e: ev.UpdateJobQueue) -> None:
    queue = resolve_queue(state, e.ref)
    ce_order = _check_ce_order(state, e.ce_order) if e.ce_order is not None else None
    policy = queue_policy(state, e.policy_arn, queue)
    if policy is not None:
        queue.policy = policy
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
    state.runnable.pop(queue.name, None)
    state.fair_runnable.pop(queue.name, None)
    for key in [k for k in state.usage if k[0] == queue.name]:
        del state.usage[key]
        state.changes.drop("share_usage", usage_key(*key))
    state.changes.drop("queue", queue.name)
    state.journal(e.now, e.cause, queue.name, "DELETED", "")


def register_definition(state: State, e: ev.RegisterJobDefinition) -> JobDefinition:
    if (e.def_type == "multinode") != (e.multinode is not None):
        raise ValidationError(
            "nodeProperties", "is required when type is multinode, and only allowed then"
        )
    check_definition_users(e.spec, e.multinode, e.caller)
    revisions = state.definitions.setdefault(e.name, {})
    revision = max(revisions, default=0) + 1
    definition = JobDefinition(
        name=e.name,
        revision=revision,
        arn=state.arn("job-definition", f"{e.name}:{revision}"),
        def_type=e.def_type,
        spec=e.spec,
        parameters=dict(e.parameters),
        echo=dict(e.echo),
        tags=dict(e.tags),
        multinode=e.multinode,
        owner=e.caller.user if e.caller is not None else None,
    )
    revisions[revision] = definition
    state.changes.touch("job_definition", f"{e.name}:{revision}")
    state.journal(e.now, e.cause, f"{e.name}:{revision}", "REGISTERED", "")
    return definition


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
