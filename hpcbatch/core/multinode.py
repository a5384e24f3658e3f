"""Submitting a multi-node parallel (MNP) job: its shape after ``nodeOverrides``, and its nodes.

Vocabulary: the **parent** is the job the user submitted; its ``multinode`` is the definition's
``MultiNodeSpec`` with the submit's overrides applied. Each **node job** ``<parent>#<i>`` runs
node ``i``'s spec (parameters substituted, the job-level retry/timeout/priority of the submit).
Node jobs are never queued on their own: they stay PENDING until the scheduler places the whole
**gang** (all nodes, one pass, one compute environment).

Override rules (AWS's): ``numNodes`` 1..1000; only an open-ended range (``"4:"``) follows a new
node count, a closed range past it is refused; the ranges still cover every node exactly once;
``mainNode < numNodes``; override ranges name nodes of the job.
"""

from __future__ import annotations

from dataclasses import replace

from hpcbatch.core import events as ev
from hpcbatch.core.model import (
    Job,
    JobDefinition,
    JobSpec,
    JobStatus,
    MultiNodeSpec,
    NodeRange,
    Resources,
    node_job_id,
)
from hpcbatch.core.process_text import check_process_text, substitute
from hpcbatch.core.state import State
from hpcbatch.errors import ValidationError

MAX_NODES = 1000
OVERRIDES = "nodeOverrides.nodePropertyOverrides"


def check_submit_shape(definition: JobDefinition, e: ev.SubmitJob) -> None:
    """What a SubmitJob may not combine with (or without) a multinode definition."""
    if definition.multinode is None:
        if e.node_overrides is not None:
            raise ValidationError(
                "nodeOverrides", f"only for a multinode job definition ({definition.name} is not)"
            )
        return
    if e.array_size is not None:
        raise ValidationError("arrayProperties", "a multinode job cannot be an array job")
    given = [
        name
        for name, value in (
            ("command", e.command),
            ("vcpus", e.cpu_milli),
            ("memory", e.memory_mib),
            ("gpus", e.gpus),
        )
        if value is not None
    ]
    if given:
        raise ValidationError(
            "containerOverrides",
            f"{', '.join(given)} cannot be overridden for a multinode job; use nodeOverrides",
        )


def _stretched_ranges(base: MultiNodeSpec, num_nodes: int) -> tuple[NodeRange, ...]:
    """The definition's ranges for ``num_nodes`` nodes: open ends follow, closed ones must fit."""
    if num_nodes == base.num_nodes:
        return base.ranges
    out = []
    for i, r in enumerate(base.ranges):
        field = f"nodeProperties.nodeRangeProperties[{i}].targetNodes"
        last = num_nodes - 1 if r.open_end else r.last
        if r.first > num_nodes - 1 or last > num_nodes - 1:
            raise ValidationError(
                field,
                f"range {r.first}:{r.last} reaches past the {num_nodes} nodes of "
                'nodeOverrides.numNodes (only an open range such as "4:" follows a new count)',
            )
        out.append(replace(r, last=last))
    covered = sum(r.last - r.first + 1 for r in out)
    if covered != num_nodes:
        raise ValidationError(
            "nodeOverrides.numNodes",
            f"{num_nodes} nodes leave nodes {covered}..{num_nodes - 1} in no node range; "
            'the definition needs an open range ("n:") for a larger count',
        )
    return tuple(out)


def _check_override_ranges(overrides: ev.NodeOverrides, num_nodes: int) -> None:
    for k, o in enumerate(overrides.ranges):
        first = 0 if o.first is None else o.first
        last = num_nodes - 1 if o.last is None else o.last
        if not 0 <= first <= last < num_nodes:
            raise ValidationError(
                f"{OVERRIDES}[{k}].targetNodes",
                f"{o.first}:{o.last} must name nodes 0..{num_nodes - 1}, first <= last",
            )


def _override(spec: JobSpec, o: ev.NodeRangeOverride) -> JobSpec:
    env = dict(spec.environment)
    env.update(dict(o.environment))
    r = spec.resources
    return replace(
        spec,
        command=spec.command if o.command is None else o.command,
        environment=tuple(env.items()),
        resources=Resources(
            r.cpu_milli if o.cpu_milli is None else o.cpu_milli,
            r.memory_mib if o.memory_mib is None else o.memory_mib,
            r.gpus if o.gpus is None else o.gpus,
        ),
    )


def gang_shape(
    definition: JobDefinition, e: ev.SubmitJob, job_level: JobSpec, parameters: dict[str, str]
) -> MultiNodeSpec:
    """The parent's ``MultiNodeSpec``: overrides applied, parameters substituted, the job-level
    fields (retry, timeout, priority, workdir) and environment of the submit on every node."""
    base = definition.multinode
    assert base is not None
    overrides = e.node_overrides or ev.NodeOverrides()
    num_nodes = base.num_nodes if overrides.num_nodes is None else overrides.num_nodes
    if not 1 <= num_nodes <= MAX_NODES:
        raise ValidationError("nodeOverrides.numNodes", f"must be 1..{MAX_NODES}, not {num_nodes}")
    if base.main_node >= num_nodes:
        raise ValidationError(
            "nodeOverrides.numNodes",
            f"{num_nodes} nodes leave no node {base.main_node} (nodeProperties.mainNode)",
        )
    ranges = _stretched_ranges(base, num_nodes)
    _check_override_ranges(overrides, num_nodes)
    stretched = MultiNodeSpec(num_nodes, base.main_node, ranges)
    specs: list[JobSpec] = []
    for index in range(num_nodes):
        spec = stretched.spec_of(index)
        spec = replace(
            spec,
            environment=tuple({**dict(spec.environment), **dict(e.environment)}.items()),
            retry=job_level.retry,
            timeout_s=job_level.timeout_s,
            priority=job_level.priority,
            workdir=job_level.workdir,
        )
        for o in overrides.ranges:
            first = 0 if o.first is None else o.first
            last = num_nodes - 1 if o.last is None else o.last
            if first <= index <= last:
                spec = _override(spec, o)
        spec = replace(spec, command=substitute(spec.command, parameters))
        if not spec.command:
            raise ValidationError(
                "nodeProperties.nodeRangeProperties", f"node {index} has no command"
            )
        check_process_text(spec)
        specs.append(spec)
    return MultiNodeSpec(num_nodes, base.main_node, _compress(specs, ranges))


def _compress(specs: list[JobSpec], ranges: tuple[NodeRange, ...]) -> tuple[NodeRange, ...]:
    """Consecutive nodes with equal specs as one range (an exact partition, in node order)."""
    open_from = next((r.first for r in ranges if r.open_end), None)
    out: list[NodeRange] = []
    for index, spec in enumerate(specs):
        if out and out[-1].spec == spec and out[-1].last == index - 1:
            out[-1] = replace(out[-1], last=index)
        else:
            out.append(NodeRange(index, index, spec))
    if open_from is not None:
        out[-1] = replace(out[-1], open_end=True)
    return tuple(out)


def add_node_jobs(state: State, parent: Job) -> None:
    """The parent's node jobs, PENDING until the gang is placed."""
    shape = parent.multinode
    assert shape is not None
    for index in range(shape.num_nodes):
        state.add_job(
            Job(
                job_id=node_job_id(parent.job_id, index),
                name=parent.name,
                queue=parent.queue,
                definition_arn=parent.definition_arn,
                seq=parent.seq,
                created_at=parent.created_at,
                spec=shape.spec_of(index),
                status=JobStatus.PENDING,
                parent_id=parent.job_id,
                node_index=index,
                owner=parent.owner,
                share=parent.share,
            )
        )


def node_jobs(state: State, parent: Job) -> list[Job]:
    shape = parent.multinode
    if shape is None:
        return []
    return [state.jobs[node_job_id(parent.job_id, i)] for i in range(shape.num_nodes)]
