"""Validated AWS request models -> core events (the API's write side).

Shape rules were checked by the models; this turns AWS's vocabulary (resourceRequirements as
strings, legacy ``vcpus``/``memory``, evaluateOnExit) into the core's integers and values, and
keeps every AWS field the head does not use so Describe* can echo it back.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_to_bytes

from hpcbatch.core import events as ev
from hpcbatch.core.ce_capacity import Machine, check_local_size
from hpcbatch.core.model import (
    DEFAULT_RESOURCES,
    Caller,
    Dependency,
    JobSpec,
    MultiNodeSpec,
    NodeRange,
    Resources,
    RetryRule,
    RetryStrategy,
    TimeLimitAction,
)
from hpcbatch.core.workdir import check_workdir
from hpcbatch.errors import ValidationError
from hpcbatch.head.api import models as m
from hpcbatch.head.slurm_target import check_slurm_names

ECHO_SKIP = {"tags"}


def echo_of(model: Any, *skip: str) -> dict[str, Any]:
    return {k: v for k, v in m.aws_fields(model).items() if k not in ECHO_SKIP | set(skip)}


def _resources(
    vcpus: int | None, memory: int | None, requirements: list[m.ResourceRequirement] | None
) -> tuple[int | None, int | None, int | None]:
    """(cpu_milli, memory_mib, gpus), each None where the request says nothing."""
    cpu = None if vcpus is None else vcpus * 1000
    mem, gpus = memory, None
    for r in requirements or []:
        if r.type == "VCPU":
            cpu = int(Decimal(r.value) * 1000)
        elif r.type == "MEMORY":
            mem = int(r.value)
        else:
            gpus = int(r.value)
    return cpu, mem, gpus


def _retry(strategy: m.RetryStrategy | None) -> RetryStrategy | None:
    if strategy is None:
        return None
    rules = tuple(
        RetryRule(r.action.upper(), r.onExitCode, r.onReason, r.onStatusReason)
        for r in strategy.evaluateOnExit or []
    )
    return RetryStrategy(strategy.attempts or 1, rules)


def consumables_of(
    props: m.ConsumableResourceProperties | None,
) -> tuple[tuple[str, int], ...]:
    """``(name or ARN, quantity)`` pairs; the core resolves them against its resources."""
    if props is None:
        return ()
    return tuple((r.consumableResource, r.quantity) for r in props.consumableResourceList or [])


def _env(variables: list[m.KeyValuePair] | None) -> tuple[tuple[str, str], ...]:
    return tuple((v.name, v.value or "") for v in variables or [])


CLOUD_ONLY = (
    "{kind} compute environments run on AWS, which this head does not reach; on machines you "
    "own use computeResources.type LOCAL (a virtual node on the head's machine, sized by "
    "maxvCpus), SSH with instanceTypes naming host pools of the head's config, SLURM with "
    "instanceTypes naming Slurm partitions (docs/slurm.md), or type UNMANAGED and add its "
    "hosts with `hpcbatch nodes add`"
)


def create_ce(
    req: m.CreateComputeEnvironmentRequest,
    cause: str,
    now: int,
    machine: Machine,
    pools: tuple[str, ...] = (),
) -> ev.Event:
    """The event that makes ``req``'s CE; cloud kinds are refused saying what to use instead,
    a LOCAL ``maxvCpus`` must fit ``machine`` (the head's own host), and an SSH CE's
    ``instanceTypes`` must name host pools among ``pools`` (the config's).

    An UNMANAGED CE is of kind SSH: its hosts are added by an admin (``hpcbatch nodes add``)."""
    resources = req.computeResources
    kind = resources.type if resources else "LOCAL"
    if req.eksConfiguration is not None:
        raise ValidationError("eksConfiguration", CLOUD_ONLY.format(kind="EKS"))
    if kind not in ("LOCAL", "SSH", "SLURM"):
        raise ValidationError("computeResources.type", CLOUD_ONLY.format(kind=kind))
    bounds: dict[str, Any] = {}
    if req.type == "UNMANAGED":
        kind = "SSH"
    elif resources is not None:
        max_vcpus = resources.maxvCpus or 0
        if kind == "LOCAL":
            check_local_size(max_vcpus, machine, "computeResources.maxvCpus")
        elif kind == "SLURM":
            _check_slurm(resources)
        else:
            _check_pools(resources.instanceTypes, pools)
        bounds = {
            "max_vcpus": max_vcpus,
            "min_vcpus": resources.minvCpus or 0,
            "desired_vcpus": resources.desiredvCpus,
        }
    return ev.CreateComputeEnvironment(
        cause=cause,
        now=now,
        name=req.computeEnvironmentName,
        ce_type=req.type,
        kind=kind,
        state=req.state or "ENABLED",
        echo=echo_of(req, "computeEnvironmentName", "type", "state"),
        tags=req.tags or {},
        **bounds,
    )


def _check_slurm(resources: m.ComputeResource) -> None:
    """A SLURM CE (hpcbatch/head/slurm_target.py): its cap on vCPUs in Slurm is required."""
    if resources.maxvCpus is None:
        raise ValidationError(
            "computeResources.maxvCpus",
            "is required for a SLURM compute environment: the most vCPUs its jobs may hold in "
            "Slurm at once (queued there or running)",
        )
    check_slurm_names(resources.instanceTypes, resources.tags)


def _check_pools(names: list[str] | None, pools: tuple[str, ...]) -> None:
    """``instanceTypes`` names host pools (AWS's instance types have no meaning on-premises)."""
    listed = ", ".join(pools) if pools else "none: declare [[host_pools]] in its config"
    if not names:
        raise ValidationError(
            "computeResources.instanceTypes",
            f"must name the host pool(s) an SSH compute environment takes its hosts from; "
            f"this head's host pools: {listed}",
        )
    for name in names:
        if name not in pools:
            raise ValidationError(
                "computeResources.instanceTypes",
                f"names no host pool {name!r}; this head's host pools: {listed}",
            )


def update_ce(
    req: m.UpdateComputeEnvironmentRequest,
    kind: str,
    cause: str,
    now: int,
    machine: Machine,
    pools: tuple[str, ...] = (),
) -> ev.UpdateComputeEnvironment:
    """``kind``: the CE's, as stored; a LOCAL CE's new ``maxvCpus`` must fit ``machine``, an SSH
    CE's new ``instanceTypes`` name host pools."""
    resources = req.computeResources
    if req.eksConfiguration is not None:
        raise ValidationError("eksConfiguration", CLOUD_ONLY.format(kind="EKS"))
    if resources is not None and resources.type not in (None, kind):
        raise ValidationError(
            "computeResources.type",
            f"a {kind} compute environment stays {kind} (got {resources.type}); create another "
            "compute environment for another kind",
        )
    if kind == "LOCAL" and resources is not None and resources.maxvCpus is not None:
        check_local_size(resources.maxvCpus, machine, "computeResources.maxvCpus")
    if kind == "SSH" and resources is not None and resources.instanceTypes is not None:
        _check_pools(resources.instanceTypes, pools)
    if kind == "SLURM" and resources is not None:
        for field in ("instanceTypes", "tags"):
            if getattr(resources, field) is not None:
                raise ValidationError(
                    f"computeResources.{field}",
                    "a SLURM compute environment's partitions, account and QOS are set when it "
                    "is made; create another compute environment for another target in Slurm",
                )
    return ev.UpdateComputeEnvironment(
        cause=cause,
        now=now,
        ref=req.computeEnvironment,
        state=req.state,
        echo=echo_of(req, "computeEnvironment", "state"),
        max_vcpus=resources.maxvCpus if resources else None,
        min_vcpus=resources.minvCpus if resources else None,
        desired_vcpus=resources.desiredvCpus if resources else None,
    )


def _ce_order(orders: list[m.ComputeEnvironmentOrder] | None) -> tuple[tuple[int, str], ...]:
    return tuple((o.order, m.ref_name(o.computeEnvironment)) for o in orders or [])


def _time_limits(
    actions: list[m.JobStateTimeLimitAction] | None,
) -> tuple[TimeLimitAction, ...] | None:
    if actions is None:
        return None
    for index, a in enumerate(actions):
        if a.action != "CANCEL":
            raise ValidationError(
                f"jobStateTimeLimitActions[{index}].action",
                f"must be CANCEL on a queue of compute environments ({a.action} is for "
                "SAGEMAKER_TRAINING service environments, which hpcbatch does not have)",
            )
    return tuple(TimeLimitAction(a.reason, a.maxTimeSeconds, a.state, a.action) for a in actions)


def create_queue(req: m.CreateJobQueueRequest, cause: str, now: int) -> ev.Event:
    if req.computeEnvironmentOrder is None:
        raise ValidationError(
            "computeEnvironmentOrder", "is required (service environments are an AWS-only feature)"
        )
    return ev.CreateJobQueue(
        cause=cause,
        now=now,
        name=req.jobQueueName,
        priority=req.priority,
        ce_order=_ce_order(req.computeEnvironmentOrder),
        state=req.state or "ENABLED",
        echo=echo_of(
            req,
            "jobQueueName",
            "priority",
            "state",
            "computeEnvironmentOrder",
            "jobStateTimeLimitActions",
        ),
        tags=req.tags or {},
        time_limit_actions=_time_limits(req.jobStateTimeLimitActions) or (),
        policy_arn=req.schedulingPolicyArn,
    )


def update_queue(req: m.UpdateJobQueueRequest, cause: str, now: int) -> ev.Event:
    order = _ce_order(req.computeEnvironmentOrder) if req.computeEnvironmentOrder else None
    return ev.UpdateJobQueue(
        cause=cause,
        now=now,
        ref=req.jobQueue,
        priority=req.priority,
        state=req.state,
        ce_order=order,
        echo=echo_of(
            req,
            "jobQueue",
            "priority",
            "state",
            "computeEnvironmentOrder",
            "jobStateTimeLimitActions",
        ),
        time_limit_actions=_time_limits(req.jobStateTimeLimitActions),
        policy_arn=req.schedulingPolicyArn,
    )


def _container_spec(props: m.ContainerProperties | None, job_level: JobSpec) -> JobSpec:
    """What one process runs and needs (``containerProperties`` or a node range's
    ``container``), with the job-level fields (retry, timeout, priority) of ``job_level``."""
    cpu, mem, gpus = (None, None, None)
    command: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    if props is not None:
        cpu, mem, gpus = _resources(props.vcpus, props.memory, props.resourceRequirements)
        command = tuple(props.command or ())
        env = _env(props.environment)
    d = DEFAULT_RESOURCES
    return replace(
        job_level,
        command=command,
        environment=env,
        resources=Resources(
            cpu if cpu is not None else d.cpu_milli,
            mem if mem is not None else d.memory_mib,
            gpus or 0,
        ),
        user=props.user if props is not None else None,
    )


def _multinode(props: m.NodeProperties, job_level: JobSpec) -> MultiNodeSpec:
    """``nodeProperties`` (already checked: ranges cover every node exactly once) with each
    ``targetNodes`` resolved against ``numNodes``, ranges in node order."""
    ranges = []
    for entry in props.nodeRangeProperties:
        covered = m.node_range(entry.targetNodes, props.numNodes)
        spec = replace(
            _container_spec(entry.container, job_level),
            consumables=consumables_of(entry.consumableResourceProperties),
        )
        open_end = m.parse_target_nodes(entry.targetNodes)[1] is None
        ranges.append(NodeRange(covered.start, covered.stop - 1, spec, open_end))
    ranges.sort(key=lambda r: r.first)
    return MultiNodeSpec(props.numNodes, props.mainNode, tuple(ranges))


def register_definition(
    req: m.RegisterJobDefinitionRequest, cause: str, now: int, caller: Caller | None = None
) -> ev.Event:
    job_level = JobSpec(
        command=(),
        retry=_retry(req.retryStrategy) or RetryStrategy(),
        timeout_s=req.timeout.attemptDurationSeconds if req.timeout else None,
        priority=req.schedulingPriority or 0,
    )
    # A multinode definition's own spec is the job-level fields alone: each node runs its range's.
    multinode = None
    spec = job_level
    if req.nodeProperties is not None:
        if req.consumableResourceProperties is not None:
            raise ValidationError(
                "consumableResourceProperties",
                "is not allowed when type is multinode: give it per node range in "
                "nodeProperties.nodeRangeProperties[].consumableResourceProperties (each node "
                "of the range takes that many)",
            )
        multinode = _multinode(req.nodeProperties, job_level)
    else:
        spec = replace(
            _container_spec(req.containerProperties, job_level),
            consumables=consumables_of(req.consumableResourceProperties),
        )
    return ev.RegisterJobDefinition(
        cause=cause,
        now=now,
        name=req.jobDefinitionName,
        def_type=req.type,
        spec=spec,
        parameters=req.parameters or {},
        echo=echo_of(req, "jobDefinitionName", "type", "parameters"),
        tags=req.tags or {},
        multinode=multinode,
        caller=caller,
    )


# Per-range override fields with no meaning for a process on an on-premises node.
_UNSUPPORTED_RANGE_FIELDS = (
    "ecsPropertiesOverride",
    "eksPropertiesOverride",
    "instanceTypes",
)


def _range_override(entry: m.NodePropertyOverride, at: str) -> ev.NodeRangeOverride:
    for name in _UNSUPPORTED_RANGE_FIELDS:
        if getattr(entry, name) is not None:
            raise ValidationError(
                f"{at}.{name}",
                "is not supported: hpcbatch runs each node's command as a process on an "
                "on-premises host; override containerOverrides (command, environment, "
                "resourceRequirements) instead",
            )
    first, last = m.parse_target_nodes(entry.targetNodes)
    consumables = consumables_of(entry.consumableResourcePropertiesOverride)
    o = entry.containerOverrides
    if o is None:
        return ev.NodeRangeOverride(first, last, consumables=consumables)
    if o.instanceType is not None:
        raise ValidationError(
            f"{at}.containerOverrides.instanceType",
            "is not supported: the compute environment's hosts are fixed; ask for "
            "resourceRequirements instead",
        )
    cpu, mem, gpus = _resources(o.vcpus, o.memory, o.resourceRequirements)
    return ev.NodeRangeOverride(
        first,
        last,
        command=tuple(o.command) if o.command else None,
        environment=_env(o.environment),
        cpu_milli=cpu,
        memory_mib=mem,
        gpus=gpus,
        consumables=consumables,
    )


def node_overrides(req: m.SubmitJobRequest) -> ev.NodeOverrides | None:
    """``nodeOverrides`` as the core's NodeOverrides; the rules that need no definition here
    (whether ranges fit the definition is the core's to check)."""
    overrides = req.nodeOverrides
    if overrides is None:
        return None
    if req.arrayProperties is not None:
        raise ValidationError(
            "arrayProperties",
            "cannot be combined with nodeOverrides: array jobs cannot be multinode",
        )
    if req.containerOverrides is not None:
        raise ValidationError(
            "containerOverrides",
            "cannot be combined with nodeOverrides: override a multi-node job's nodes in "
            "nodeOverrides.nodePropertyOverrides[].containerOverrides",
        )
    ranges = tuple(
        _range_override(entry, f"nodeOverrides.nodePropertyOverrides[{index}]")
        for index, entry in enumerate(overrides.nodePropertyOverrides or [])
    )
    return ev.NodeOverrides(overrides.numNodes, ranges)


WORKDIR_HEADER = "x-hpcbatch-workdir"


def workdir_of(header: str | None) -> str | None:
    """The job's working directory from the ``x-hpcbatch-workdir`` header (None: absent):
    percent-encoded UTF-8 (raw UTF-8 is taken too; a ``%`` in a path is sent as ``%25``),
    an absolute path (core/workdir.py)."""
    if header is None:
        return None
    try:  # the ASGI server hands header bytes over as latin-1 text: these are its bytes
        path = unquote_to_bytes(header.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise ValidationError(WORKDIR_HEADER, "must be percent-encoded UTF-8") from None
    return check_workdir(path, WORKDIR_HEADER)


def submit_job(
    req: m.SubmitJobRequest,
    job_id: str,
    cause: str,
    now: int,
    strict: bool,
    workdir: str | None = None,
    caller: Caller | None = None,
) -> ev.SubmitJob:
    multinode = node_overrides(req)
    if multinode is not None and req.consumableResourcePropertiesOverride is not None:
        raise ValidationError(
            "consumableResourcePropertiesOverride",
            "cannot be combined with nodeOverrides: override a multi-node job's consumable "
            "resources per node range in nodeOverrides.nodePropertyOverrides[]."
            "consumableResourcePropertiesOverride",
        )
    o = req.containerOverrides
    cpu, mem, gpus = _resources(o.vcpus, o.memory, o.resourceRequirements) if o else (None,) * 3
    return ev.SubmitJob(
        cause=cause,
        now=now,
        job_id=job_id,
        name=req.jobName,
        queue=req.jobQueue,
        definition=req.jobDefinition,
        command=tuple(o.command) if o and o.command else None,
        environment=_env(o.environment) if o else (),
        cpu_milli=cpu,
        memory_mib=mem,
        gpus=gpus,
        parameters=req.parameters or {},
        array_size=req.arrayProperties.size if req.arrayProperties else None,
        depends_on=tuple(Dependency(d.jobId, d.type) for d in req.dependsOn or []),
        retry=_retry(req.retryStrategy),
        timeout_s=req.timeout.attemptDurationSeconds if req.timeout else None,
        priority=req.schedulingPriorityOverride,
        tags=req.tags or {},
        echo=echo_of(
            req,
            "jobName",
            "jobQueue",
            "jobDefinition",
            "parameters",
            "dependsOn",
            "containerOverrides",
            "nodeOverrides",
            "arrayProperties",
            "retryStrategy",
            "timeout",
            "schedulingPriorityOverride",
            "consumableResourcePropertiesOverride",
        ),
        strict=strict,
        consumables=consumables_of(req.consumableResourcePropertiesOverride),
        node_overrides=multinode,
        workdir=workdir,
        caller=caller,
        share_identifier=req.shareIdentifier,
    )


def create_quota_share(req: m.CreateQuotaShareRequest, cause: str, now: int) -> ev.CreateQuotaShare:
    sharing = req.resourceSharingConfiguration
    return ev.CreateQuotaShare(
        cause=cause,
        now=now,
        name=req.quotaShareName,
        queue=req.jobQueue,
        limits=tuple((x.capacityUnit, x.maxCapacity) for x in req.capacityLimits),
        strategy=sharing.strategy,
        borrow_limit=sharing.borrowLimit,
        in_share_preemption=req.preemptionConfiguration.inSharePreemption == "ENABLED",
        state=req.state or "ENABLED",
        tags=req.tags or {},
    )


def update_quota_share(req: m.UpdateQuotaShareRequest, cause: str, now: int) -> ev.UpdateQuotaShare:
    sharing = req.resourceSharingConfiguration
    preemption = req.preemptionConfiguration
    limits = req.capacityLimits
    return ev.UpdateQuotaShare(
        cause=cause,
        now=now,
        ref=req.quotaShareArn,
        limits=None if limits is None else tuple((x.capacityUnit, x.maxCapacity) for x in limits),
        sharing=None if sharing is None else (sharing.strategy, sharing.borrowLimit),
        in_share_preemption=None
        if preemption is None
        else preemption.inSharePreemption == "ENABLED",
        state=req.state,
    )
