"""SubmitJob: merge definition, overrides and parameters into jobs, and wire dependencies.

An array job becomes one parent plus ``size`` children ``<parent>:<index>``; children share the
parent's ``JobSpec`` object (10,000 children cost 10,000 small records, not 10,000 specs).
Everything is checked before the first job is added, so a refused submit leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import replace

from hpcbatch.core import events as ev
from hpcbatch.core.capacity import gang_fit_problem, largest_fit_problem
from hpcbatch.core.consumable_resources import LIST_FIELD, merge_needs, resolve_needs
from hpcbatch.core.consumables import spec_needs
from hpcbatch.core.jobs import dependency_failed, finish_job
from hpcbatch.core.model import (
    Job,
    JobDefinition,
    JobQueue,
    JobSpec,
    JobStatus,
    MultiNodeSpec,
    Resources,
    array_child,
)
from hpcbatch.core.multinode import add_node_jobs, check_submit_shape, gang_shape
from hpcbatch.core.owners import check_user, gang_run_as_owner
from hpcbatch.core.policies import check_share
from hpcbatch.core.process_text import check_process_text, substitute
from hpcbatch.core.quota_shares import quota_share_of
from hpcbatch.core.resolve import resolve_definition, resolve_queue
from hpcbatch.core.state import State
from hpcbatch.core.workdir import check_workdir
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError


def merge_spec(definition: JobDefinition, e: ev.SubmitJob) -> tuple[JobSpec, dict[str, str]]:
    base = definition.spec
    parameters = {**definition.parameters, **e.parameters}
    env = dict(base.environment)
    env.update(dict(e.environment))
    r = base.resources
    resources = Resources(
        cpu_milli=r.cpu_milli if e.cpu_milli is None else e.cpu_milli,
        memory_mib=r.memory_mib if e.memory_mib is None else e.memory_mib,
        gpus=r.gpus if e.gpus is None else e.gpus,
    )
    spec = replace(
        base,
        command=substitute(e.command if e.command is not None else base.command, parameters),
        environment=tuple(env.items()),
        resources=resources,
        retry=e.retry if e.retry is not None else base.retry,
        timeout_s=e.timeout_s if e.timeout_s is not None else base.timeout_s,
        priority=e.priority if e.priority is not None else base.priority,
        workdir=None if e.workdir is None else check_workdir(e.workdir),
        user=base.user if base.user is not None or e.caller is None else e.caller.user,
    )
    return spec, parameters


def _check_dependencies(state: State, e: ev.SubmitJob) -> None:
    for i, dep in enumerate(e.depends_on):
        field = f"dependsOn[{i}]"
        if dep.dep_type == "SEQUENTIAL":
            if e.array_size is None:
                raise ValidationError(field, "SEQUENTIAL dependencies are only for array jobs")
            continue
        if dep.job_id is None:
            raise ValidationError(f"{field}.jobId", "is required unless type is SEQUENTIAL")
        target = state.jobs.get(dep.job_id)
        if target is None:
            raise NotFoundError(f"{field}.jobId: no job {dep.job_id!r}")
        if dep.dep_type == "N_TO_N" and (e.array_size is None or target.array_size != e.array_size):
            raise ValidationError(
                field,
                f"N_TO_N needs two array jobs of the same size (this job: {e.array_size}, "
                f"{dep.job_id}: {target.array_size})",
            )


def submit_job(state: State, e: ev.SubmitJob) -> Job:
    queue = resolve_queue(state, e.queue)
    if queue.state != "ENABLED":
        raise ConflictError(f"jobQueue: {queue.name!r} is {queue.state} and accepts no new jobs")
    definition = resolve_definition(state, e.definition)
    if definition.status != "ACTIVE":
        raise ConflictError(f"jobDefinition: {definition.arn} is INACTIVE")
    if e.job_id in state.jobs:
        raise ConflictError(f"jobId: {e.job_id!r} already exists")
    # A queue with quota shares names them in shareIdentifier; any other follows fair share's
    # rule (required on a fair-share queue, refused on a FIFO one).
    share = quota_share_of(state, queue, e.share_identifier)
    if share is None:
        check_share(state, queue, e.share_identifier)
        share = e.share_identifier
    _check_dependencies(state, e)
    spec, parameters, shape = _checked_spec(state, queue, definition, e)
    seq = state.next_seq()
    parent = Job(
        job_id=e.job_id,
        name=e.name,
        queue=queue.name,
        definition_arn=definition.arn,
        seq=seq,
        created_at=e.now,
        spec=spec,
        depends_on=e.depends_on,
        parameters=parameters,
        tags=dict(e.tags),
        echo=dict(e.echo),
        array_size=e.array_size,
        multinode=shape,
        owner=e.caller.user if e.caller is not None else None,
        share=share,
    )
    plain = [d.job_id for d in e.depends_on if d.dep_type is None and d.job_id is not None]
    state.journal(e.now, e.cause, e.job_id, "SUBMITTED", _submit_detail(e, queue.name, shape))
    doomed = _add(state, parent, _unfinished(state, plain))
    if shape is not None:
        add_node_jobs(state, parent)
    if e.array_size is not None:
        doomed += _add_children(state, parent, plain, e)
    # Fail only once every job exists, so an array parent sees all of its children.
    for job, failed_dep in doomed:
        why = dependency_failed(state.jobs[failed_dep])
        finish_job(state, job, JobStatus.FAILED, e.cause, e.now, why)
    return parent


def _checked_spec(
    state: State, queue: JobQueue, definition: JobDefinition, e: ev.SubmitJob
) -> tuple[JobSpec, dict[str, str], MultiNodeSpec | None]:
    """The job's spec and parameters, and a multi-node job's shape, every rule checked."""
    check_submit_shape(definition, e)
    if definition.multinode is None:
        check_user(definition.spec, e.caller, "SubmitJob", "containerProperties.user")
    spec, parameters = merge_spec(definition, e)
    shape = None
    if definition.multinode is not None:
        shape = gang_run_as_owner(
            gang_shape(definition, e, spec, parameters), e.caller, "SubmitJob"
        )
        problem = gang_fit_problem(state, queue, shape)
        field = "nodeProperties"
    else:
        if not spec.command:
            raise ValidationError(
                "containerOverrides.command",
                f"job definition {definition.name}:{definition.revision} has no command; give one",
            )
        check_process_text(spec)
        problem = largest_fit_problem(state, queue, spec.resources)
        field = "resourceRequirements"
    if e.strict and problem is not None:
        raise ValidationError(field, f"{problem} (refused: --strict)")
    spec = _with_consumables(state, definition, e, spec, shape)
    return spec, parameters, shape


_OVERRIDE = "consumableResourcePropertiesOverride"


def _with_consumables(
    state: State,
    definition: JobDefinition,
    e: ev.SubmitJob,
    spec: JobSpec,
    shape: MultiNodeSpec | None,
) -> JobSpec:
    """The job's consumable needs, resolved and merged over the definition's; a job that
    needs more than a resource's total is accepted and waits (as on AWS: the total may be
    raised), unless ``--strict``."""
    if shape is not None:
        if e.consumables:
            raise ValidationError(
                _OVERRIDE,
                "is not allowed for a multi-node job: give it per node range in "
                f"nodeOverrides.nodePropertyOverrides[].{_OVERRIDE}",
            )
        for k, o in enumerate(e.node_overrides.ranges if e.node_overrides else ()):
            at = f"nodeOverrides.nodePropertyOverrides[{k}].{_OVERRIDE}.{LIST_FIELD}"
            resolve_needs(state, o.consumables, at)
        for node_range in shape.ranges:
            merge_needs(state, node_range.spec, (), _OVERRIDE)
    else:
        spec = replace(
            spec, consumables=merge_needs(state, definition.spec, e.consumables, _OVERRIDE)
        )
    for name, quantity in sorted(spec_needs(spec, shape).items()):
        total = state.consumables[name].total
        if e.strict and quantity > total:
            raise ValidationError(
                _OVERRIDE,
                f"needs {quantity} of consumable resource {name!r}, more than its total "
                f"{total} (refused: --strict)",
            )
    return spec


def _submit_detail(e: ev.SubmitJob, queue: str, gang: MultiNodeSpec | None) -> str:
    shape = f"array of {e.array_size}" if e.array_size else "job"
    if gang is not None:
        shape = f"{gang.num_nodes}-node job (main node {gang.main_node})"
    return f"{shape} {e.name!r} to queue {queue}"


def _unfinished(state: State, ids: list[str]) -> tuple[set[str], str | None]:
    """Ids still to wait for, or a failed one (its dependents fail at once)."""
    waiting = set()
    for job_id in ids:
        target = state.jobs[job_id]
        if target.status is JobStatus.FAILED:
            return set(), job_id
        if target.status is not JobStatus.SUCCEEDED:
            waiting.add(job_id)
    return waiting, None


Doomed = list[tuple[Job, str]]


def _add(state: State, job: Job, deps: tuple[set[str], str | None]) -> Doomed:
    waiting, failed = deps
    job.waiting_on = waiting
    pending = waiting or failed or job.is_array_parent
    job.status = JobStatus.PENDING if pending else JobStatus.RUNNABLE
    state.add_job(job)
    for target in waiting:
        state.dependents.setdefault(target, set()).add(job.job_id)
    return [(job, failed)] if failed is not None else []


def _add_children(state: State, parent: Job, plain: list[str], e: ev.SubmitJob) -> Doomed:
    size = e.array_size or 0
    n_to_n = [d.job_id for d in e.depends_on if d.dep_type == "N_TO_N" and d.job_id]
    sequential = any(d.dep_type == "SEQUENTIAL" for d in e.depends_on)
    doomed: Doomed = []
    for index in range(size):
        ids = list(plain) + [f"{other}:{index}" for other in n_to_n]
        if sequential and index > 0:
            ids.append(f"{parent.job_id}:{index - 1}")
        child = array_child(parent, index, e.now)
        doomed += _add(state, child, _unfinished(state, ids))
    if not parent.depends_on:
        # Born RUNNABLE, waiting on nothing: stored only once they change, and rebuilt from
        # their parent when the head starts (codec.implicit_children): a 10,000-child array
        # is one document to write and to read back, not 10,001.
        state.changes.untouch("job", (f"{parent.job_id}:{i}" for i in range(size)))
    return doomed
