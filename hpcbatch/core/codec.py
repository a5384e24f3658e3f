"""Plain-dict documents of state objects, for the store, and the state rebuilt from them.

Array children are stored small: their spec, name and definition come from the parent, so
10,000 children cost 10,000 short documents. Multi-node parents keep their shape
(``multinode``); their node jobs are stored whole (each has its own spec), with ``parent_id``
and ``node_index``. ``rebuild`` recomputes every index (listings, queue
orders, child counts, dependents, node allocations) from the objects alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from hpcbatch.core.model import (
    ACTIVE,
    REPLENISHABLE,
    AccessKey,
    Attempt,
    ComputeEnvironment,
    ConsumableResource,
    Dependency,
    Gpu,
    Job,
    JobDefinition,
    JobQueue,
    JobSpec,
    JobStatus,
    MultiNodeSpec,
    Node,
    NodeRange,
    NodeState,
    QuotaShare,
    Resources,
    RetryRule,
    RetryStrategy,
    TimeLimitAction,
    User,
    array_child,
    attempt_id,
)
from hpcbatch.core.shares import QueueRunTime, SchedulingPolicy, ShareUsage, ShareWeight
from hpcbatch.core.state import State

Doc = dict[str, Any]


def spec_to_doc(spec: JobSpec) -> Doc:
    # By hand, like _attempt_doc: asdict's deep copy is a hot spot when jobs are persisted.
    r, retry = spec.resources, spec.retry
    return {
        "command": list(spec.command),
        "environment": [list(pair) for pair in spec.environment],
        "resources": {"cpu_milli": r.cpu_milli, "memory_mib": r.memory_mib, "gpus": r.gpus},
        "retry": {
            "attempts": retry.attempts,
            "rules": [
                {
                    "action": x.action,
                    "on_exit_code": x.on_exit_code,
                    "on_reason": x.on_reason,
                    "on_status_reason": x.on_status_reason,
                }
                for x in retry.rules
            ],
        },
        "timeout_s": spec.timeout_s,
        "priority": spec.priority,
        "user": spec.user,
        "workdir": spec.workdir,
        **({"consumables": [list(c) for c in spec.consumables]} if spec.consumables else {}),
    }


def spec_from_doc(doc: Doc) -> JobSpec:
    retry = doc["retry"]
    return JobSpec(
        command=tuple(doc["command"]),
        environment=tuple((k, v) for k, v in doc["environment"]),
        resources=Resources(**doc["resources"]),
        retry=RetryStrategy(retry["attempts"], tuple(RetryRule(**r) for r in retry["rules"])),
        timeout_s=doc["timeout_s"],
        priority=doc["priority"],
        user=doc.get("user"),
        workdir=doc.get("workdir"),
        consumables=tuple((name, quantity) for name, quantity in doc.get("consumables", ())),
    )


def job_to_doc(job: Job) -> Doc:
    doc: Doc = {
        "job_id": job.job_id,
        "status": job.status.value,
        "status_reason": job.status_reason,
        "waiting_on": sorted(job.waiting_on),
        "attempts": [_attempt_doc(a) for a in job.attempts],
        "started_at": job.started_at,
        "stopped_at": job.stopped_at,
        "is_cancelled": job.is_cancelled,
        "is_terminated": job.is_terminated,
        "start_reason": job.start_reason,
        "kill_reason": job.kill_reason,
        "created_at": job.created_at,
    }
    if job.parent_id is not None and job.node_index is None:
        doc.update(parent_id=job.parent_id, array_index=job.array_index)
        return doc
    if job.node_index is not None:
        doc.update(parent_id=job.parent_id, node_index=job.node_index)
    if job.multinode is not None:
        doc.update(multinode=multinode_to_doc(job.multinode))
    doc.update(
        name=job.name,
        queue=job.queue,
        definition_arn=job.definition_arn,
        seq=job.seq,
        spec=spec_to_doc(job.spec),
        depends_on=[asdict(d) for d in job.depends_on],
        parameters=job.parameters,
        tags=job.tags,
        echo=job.echo,
        array_size=job.array_size,
        owner=job.owner,
        share=job.share,
    )
    if job.share is not None:
        doc["share"] = job.share
    return doc


_STATUS = {status.value: status for status in JobStatus}


def job_from_doc(doc: Doc, parents: dict[str, Job]) -> Job:
    parent = parents.get(doc.get("parent_id") or "")
    attempts = doc["attempts"]
    if parent is not None:  # an array child: most of a million jobs, kept to what is its own
        return Job(
            job_id=doc["job_id"],
            name=parent.name,
            queue=parent.queue,
            definition_arn=parent.definition_arn,
            seq=parent.seq,
            spec=parent.spec,
            created_at=doc["created_at"],
            status=_STATUS[doc["status"]],
            status_reason=doc["status_reason"],
            waiting_on=set(doc["waiting_on"]),
            attempts=[_attempt(a) for a in attempts] if attempts else [],
            started_at=doc["started_at"],
            stopped_at=doc["stopped_at"],
            is_cancelled=doc["is_cancelled"],
            is_terminated=doc["is_terminated"],
            start_reason=doc["start_reason"],
            kill_reason=doc["kill_reason"],
            parent_id=parent.job_id,
            array_index=doc["array_index"],
            owner=parent.owner,
            share=parent.share,
        )
    common: Doc = {
        "job_id": doc["job_id"],
        "created_at": doc["created_at"],
        "status": _STATUS[doc["status"]],
        "status_reason": doc["status_reason"],
        "waiting_on": set(doc["waiting_on"]),
        "attempts": [_attempt(a) for a in attempts],
        "started_at": doc["started_at"],
        "stopped_at": doc["stopped_at"],
        "is_cancelled": doc["is_cancelled"],
        "is_terminated": doc["is_terminated"],
        "start_reason": doc["start_reason"],
        "kill_reason": doc["kill_reason"],
    }
    return Job(
        name=doc["name"],
        queue=doc["queue"],
        definition_arn=doc["definition_arn"],
        seq=doc["seq"],
        spec=spec_from_doc(doc["spec"]),
        depends_on=tuple(Dependency(**d) for d in doc["depends_on"]),
        parameters=doc["parameters"],
        tags=doc["tags"],
        echo=doc["echo"],
        array_size=doc["array_size"],
        parent_id=doc.get("parent_id"),
        node_index=doc.get("node_index"),
        multinode=multinode_from_doc(doc["multinode"]) if doc.get("multinode") else None,
        owner=doc.get("owner"),  # None in documents stored before identities
        share=doc.get("share"),  # None in documents stored before fair share
        **common,
    )


def _attempt_doc(a: Attempt) -> Doc:
    # By hand: dataclasses.asdict deep-copies and is the hot spot of persisting jobs.
    return {
        "number": a.number,
        "node": a.node,
        "cpu_milli": a.cpu_milli,
        "memory_mib": a.memory_mib,
        "gpus": list(a.gpus),
        "started_at": a.started_at,
        "stopped_at": a.stopped_at,
        "exit_code": a.exit_code,
        "reason": a.reason,
        "log_stream": a.log_stream,
        "pid": a.pid,
        "scheduled_at": a.scheduled_at,
    }


def _attempt(doc: Doc) -> Attempt:
    doc = dict(doc)
    old = doc.pop("gpu_indices", None)  # before GPU ids: indices
    gpus = doc.pop("gpus", None)
    ids = tuple(gpus) if gpus is not None else tuple(str(i) for i in old or ())
    return Attempt(**doc, gpus=ids)


def _gpu_doc(gpu: Gpu) -> Doc:
    return {"id": gpu.id, "index": gpu.index, "model": gpu.model, "memory_mib": gpu.memory_mib}


def _node_gpus(doc: Doc) -> tuple[Gpu, ...]:
    if "gpus" in doc:
        return tuple(Gpu(**g) for g in doc["gpus"])
    return tuple(Gpu(str(i), i) for i in doc.get("gpu_indices", ()))  # before GPU ids


def ce_to_doc(ce: ComputeEnvironment) -> Doc:
    return asdict(ce)


def quota_share_to_doc(share: QuotaShare) -> Doc:
    return asdict(share)


def queue_to_doc(queue: JobQueue) -> Doc:
    return asdict(queue)


def policy_to_doc(policy: SchedulingPolicy) -> Doc:
    return asdict(policy)


def usage_to_doc(queue: str, share: str, usage: ShareUsage) -> Doc:
    return {
        "queue": queue,
        "share": share,
        "value": usage.value,
        "as_of": usage.as_of,
        "run_ms": usage.run_ms,
        "run_var": usage.run_var,
    }


def run_time_to_doc(queue: str, run: QueueRunTime) -> Doc:
    return {"queue": queue, "run_ms": run.run_ms, "run_var": run.run_var, "count": run.count}


def _rebuild_fairshare(state: State, docs: dict[str, list[Doc]]) -> None:
    for d in docs.get("scheduling_policy", []):
        shares = tuple(ShareWeight(**s) for s in d["shares"])
        state.policies[d["name"]] = SchedulingPolicy(**{**d, "shares": shares})
    for d in docs.get("share_usage", []):
        usage = ShareUsage(d["value"], d["as_of"], d.get("run_ms", 0.0), d.get("run_var", 0.0))
        state.usage[(d["queue"], d["share"])] = usage
    for d in docs.get("queue_run_time", []):
        state.run_times[d["queue"]] = QueueRunTime(d["run_ms"], d["run_var"], d["count"])


def multinode_to_doc(multinode: MultiNodeSpec) -> Doc:
    return {
        "num_nodes": multinode.num_nodes,
        "main_node": multinode.main_node,
        "ranges": [
            {"first": r.first, "last": r.last, "open_end": r.open_end, "spec": spec_to_doc(r.spec)}
            for r in multinode.ranges
        ],
    }


def multinode_from_doc(doc: Doc) -> MultiNodeSpec:
    ranges = tuple(
        NodeRange(r["first"], r["last"], spec_from_doc(r["spec"]), r.get("open_end", False))
        for r in doc["ranges"]
    )
    return MultiNodeSpec(doc["num_nodes"], doc["main_node"], ranges)


def definition_to_doc(definition: JobDefinition) -> Doc:
    doc = asdict(definition)
    doc["spec"] = spec_to_doc(definition.spec)
    doc["multinode"] = multinode_to_doc(definition.multinode) if definition.multinode else None
    return doc


def definition_from_doc(doc: Doc) -> JobDefinition:
    # Documents stored before multi-node jobs have no "multinode" key.
    multinode = doc.get("multinode")
    return JobDefinition(
        **{
            **doc,
            "spec": spec_from_doc(doc["spec"]),
            "multinode": multinode_from_doc(multinode) if multinode else None,
        }
    )


def consumable_to_doc(resource: ConsumableResource) -> Doc:
    """``in_use`` is left out: it is rebuilt from the live attempts (``_hold``)."""
    return {
        "name": resource.name,
        "arn": resource.arn,
        "total": resource.total,
        "resource_type": resource.resource_type,
        "created_at": resource.created_at,
        "tags": resource.tags,
        "tokens": resource.tokens,
    }


def _rebuild_consumables(state: State, docs: list[Doc]) -> None:
    for d in docs:
        state.consumables[d["name"]] = ConsumableResource(**d)


def user_to_doc(user: User) -> Doc:
    """An API user with its keys, secrets included: the store is the head's alone (0600)."""
    return {
        "name": user.name,
        "unix_user": user.unix_user,
        "created_at": user.created_at,
        "created_by": user.created_by,
        "keys": [asdict(key) for key in user.keys.values()],
    }


def _rebuild_users(state: State, docs: list[Doc]) -> None:
    for d in docs:
        keys = {k["key_id"]: AccessKey(**k) for k in d["keys"]}
        user = User(d["name"], d["unix_user"], d["created_at"], d["created_by"], keys)
        state.users[user.name] = user
        state.user_keys.update((key_id, user.name) for key_id in keys)


def node_to_doc(node: Node) -> Doc:
    return {
        "name": node.name,
        "ce": node.ce,
        "capacity": asdict(node.capacity),
        "gpus": [_gpu_doc(gpu) for gpu in node.gpus],
        "gpus_out": dict(node.gpus_out),
        "gpus_reason": node.gpus_reason,
        "gpu_isolation": node.gpu_isolation,
        "gpu_isolation_reason": node.gpu_isolation_reason,
        "state": node.state.value,
        "state_reason": node.state_reason,
        "state_changed_at": node.state_changed_at,
        "last_heartbeat": node.last_heartbeat,
        "enforcement": node.enforcement,
        "address": node.address,
        "launch_port": node.launch_port,
        "placement_group": node.placement_group,
        "fabric_env": [list(pair) for pair in node.fabric_env],
        "retiring": node.retiring,
        "machine": node.machine,
        "machine_capacity": None
        if node.machine_capacity is None
        else asdict(node.machine_capacity),
    }


def rebuild(state: State, docs: dict[str, list[Doc]], jobs: Iterable[Doc] | None = None) -> None:
    """Fill an empty ``state`` from stored documents (kind -> docs); ``jobs``, when given, are
    the job documents instead of ``docs["job"]``, read one at a time (a million would not be
    held at once: ``head/persist.py``), an array's parent before its children."""
    for d in docs.get("compute_environment", []):
        state.ces[d["name"]] = ComputeEnvironment(**d)
    _rebuild_fairshare(state, docs)
    for d in docs.get("queue", []):
        actions = tuple(TimeLimitAction(**a) for a in d.get("time_limit_actions", ()))
        state.queues[d["name"]] = JobQueue(
            **{**d, "ce_order": tuple(d["ce_order"]), "time_limit_actions": actions}
        )
    for d in docs.get("quota_share", []):
        share = QuotaShare(**d)
        state.quota_shares[share.key] = share
    for d in docs.get("job_definition", []):
        definition = definition_from_doc(d)
        state.definitions.setdefault(definition.name, {})[definition.revision] = definition
    for d in docs.get("node", []):
        node = state.nodes[d["name"]] = Node(
            name=d["name"],
            ce=d["ce"],
            capacity=Resources(**d["capacity"]),
            gpus=_node_gpus(d),
            gpus_out=dict(d.get("gpus_out", {})),
            gpus_reason=d.get("gpus_reason"),
            gpu_isolation=d.get("gpu_isolation", "env"),
            gpu_isolation_reason=d.get("gpu_isolation_reason"),
            state=NodeState(d["state"]),
            state_reason=d["state_reason"],
            state_changed_at=d["state_changed_at"],
            last_heartbeat=d["last_heartbeat"],
            enforcement=d["enforcement"],
            address=d.get("address"),
            launch_port=d.get("launch_port"),
            placement_group=d.get("placement_group"),
            fabric_env=tuple((k, v) for k, v in d.get("fabric_env", [])),
            retiring=d.get("retiring"),
            machine=d.get("machine"),
            machine_capacity=None
            if d.get("machine_capacity") is None
            else Resources(**d["machine_capacity"]),
        )
        node.free_gpus = node.gpus_in_service  # less what live attempts hold: _hold
    _rebuild_consumables(state, docs.get("consumable_resource", []))
    with state.bulk():
        _rebuild_jobs(state, docs.get("job", []) if jobs is None else jobs)
    _rebuild_users(state, docs.get("user", []))
    seqs = [c.seq for c in state.ces.values()] + [q.seq for q in state.queues.values()]
    seqs += [s.seq for s in state.quota_shares.values()]
    seqs += [p.seq for p in state.policies.values()]
    seqs += [j.seq for j in state.jobs.values()]
    state.seq = max(seqs, default=0)
    state.changes.dirty.clear()


def _rebuild_jobs(state: State, docs: Iterable[Doc]) -> None:
    """An array child's document holds only what is its own (``job_to_doc``): it is built on
    its parent, so one that comes before its parent waits for it. The children that have no
    document are those that never changed since their birth (``implicit_children``)."""
    parents: dict[str, Job] = {}
    early: list[Doc] = []
    stored: dict[str, set[int]] = {}  # array parent -> its children that have a document
    for d in docs:
        parent_id = d.get("parent_id")
        if parent_id is not None and "name" not in d:
            if parent_id not in parents:
                early.append(d)
                continue
            stored.setdefault(parent_id, set()).add(d["array_index"])
        _rebuild_job(state, job_from_doc(d, parents), parents)
    for d in early:
        stored.setdefault(d["parent_id"], set()).add(d["array_index"])
        _rebuild_job(state, job_from_doc(d, parents), parents)
    for parent in parents.values():
        for child in implicit_children(parent, stored.get(parent.job_id, set())):
            _rebuild_job(state, child, parents)


def implicit_children(parent: Job, stored: set[int]) -> Iterator[Job]:
    """The children of array ``parent`` that were never stored: with no dependency, a child
    is born RUNNABLE waiting on nothing (``submit._add_children``) and is written only once it
    changes, so one without a document is as it was born."""
    if parent.depends_on or parent.array_size is None:
        return
    for index in range(parent.array_size):
        if index not in stored:
            child = array_child(parent, index, parent.created_at)
            child.status = JobStatus.RUNNABLE
            yield child


def _rebuild_job(state: State, job: Job, parents: dict[str, Job]) -> None:
    if job.is_array_parent:
        parents[job.job_id] = job
    state.add_job(job)
    for target in job.waiting_on:
        state.dependents.setdefault(target, set()).add(job.job_id)
    if job.status in ACTIVE and job.attempts:
        _hold(state, job)


def _hold(state: State, job: Job) -> None:
    attempt = job.attempts[-1]
    node = state.nodes.get(attempt.node)
    if node is None:
        return
    node.attempts.add(attempt_id(job.job_id, attempt.number))
    node.allocated = node.allocated + attempt.resources
    node.free_gpus -= set(attempt.gpus)
    for name, quantity in job.spec.consumables:  # REPLENISHABLE units it holds (in_use)
        resource = state.consumables.get(name)
        if resource is not None and resource.resource_type == REPLENISHABLE:
            resource.in_use += quantity
