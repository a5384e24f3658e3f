"""Consumable resources in use: what a job needs, the scheduler's gate, holds and releases.

Vocabulary: a **consumable resource** (``ConsumableResource``, AWS's name; Slurm calls it a
license) is a named count of something outside the nodes. A job's **needs** are
``spec.consumables``; a multi-node job needs the sum over its nodes (each node takes its
range's quantities). An attempt **holds** its needs from STARTING until it ends, whatever the
end (success, failure, kill, host lost): REPLENISHABLE units return then, and a retry takes
them again; NON_REPLENISHABLE units are used up at the start (``total`` drops for good).
So ``in_use`` of a resource is always the sum over live attempts of what they hold
(``check_invariants`` proves it).

The gate, in one scheduling pass (``PassGate``): a job starts only when every resource it
needs has that many available, less what the pass already placed, so two jobs never both take
the last unit; ``PlanApplied`` checks again. A job short of a resource **waits for it**: it
takes no node reservation (a reservation would idle nodes for a job that could not use them),
and the resources it is short of are kept for it for the rest of the pass: no later job takes
them, so a job that needs 2 is not starved by a stream of jobs that need 1.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from hpcbatch.core.model import REPLENISHABLE, ConsumableResource, Job, JobSpec, MultiNodeSpec
from hpcbatch.core.state import State


def needs(job: Job) -> dict[str, int]:
    """What one attempt of ``job`` takes (a multi-node parent: all of its nodes together)."""
    return spec_needs(job.spec, job.multinode)


def spec_needs(spec: JobSpec, shape: MultiNodeSpec | None) -> dict[str, int]:
    """What a job of ``spec`` (and ``shape``, for a multi-node job) takes, by resource."""
    if shape is None:
        return dict(spec.consumables)  # (the common case, without a Counter: once a start)
    total: Counter[str] = Counter(dict(spec.consumables))
    if shape is not None:
        for node_range in shape.ranges:
            count = node_range.last - node_range.first + 1
            for name, quantity in node_range.spec.consumables:
                total[name] += quantity * count
    return dict(total)


def shortage(state: State, need: dict[str, int]) -> tuple[ConsumableResource, int] | None:
    """The first resource (by name) that has less available than ``need`` asks, with what
    is asked; a resource that no longer exists counts as having none."""
    for name in sorted(need):
        resource = state.consumables.get(name)
        if resource is None or resource.available < need[name]:
            return (resource or _gone(name), need[name])
    return None


def _gone(name: str) -> ConsumableResource:
    return ConsumableResource(name, "", 0, REPLENISHABLE, 0)


KEPT_SCAN = 200  # how many jobs ahead in its queue ``wait_reason`` reads, at most


def _kept_for(state: State, job: Job, need: dict[str, int]) -> str | None:
    """Why ``job`` waits although every resource it needs has enough: an earlier job of its
    queue (among the first ``KEPT_SCAN``) is short of one of them, and the pass keeps it."""
    for key in islice(state.runnable.get(job.queue, ()), KEPT_SCAN):
        if key[3] == job.job_id:
            return None
        ahead = state.jobs[key[3]]
        if not ahead.spec.consumables and ahead.multinode is None:
            continue
        wanted = needs(ahead)
        short = shortage(state, {n: q for n, q in wanted.items() if n in need})
        if short is not None:
            resource, quantity = short
            return (
                f'waiting for consumable resource "{resource.name}": needs {need[resource.name]}, '
                f"{resource.available} of {resource.total} available, kept for job "
                f"{ahead.job_id} ahead of it, which needs {quantity}"
            )
    return None


def wait_reason(state: State, job: Job) -> str | None:
    """Why a RUNNABLE job waits for a consumable resource; None when it has all it needs."""
    if not job.spec.consumables and job.multinode is None:
        return None
    need = needs(job)
    short = shortage(state, need)
    if short is None:
        return _kept_for(state, job, need) if need else None
    resource, quantity = short
    if not resource.arn:
        return f'waiting for consumable resource "{resource.name}": it no longer exists'
    if quantity > resource.total:
        return (
            f'waiting for consumable resource "{resource.name}": needs {quantity}, more than its '
            f"total {resource.total}; it waits until the total is raised"
        )
    return (
        f'waiting for consumable resource "{resource.name}": needs {quantity}, '
        f"{resource.available} of {resource.total} available ({resource.in_use} in use)"
    )


@dataclass(slots=True)
class PassGate:
    """What one scheduling pass has left of each resource, and the resources kept for jobs
    that wait for them (see the module docstring)."""

    state: State
    left: dict[str, int] = field(default_factory=dict)
    kept: set[str] = field(default_factory=set)

    def _left(self, name: str) -> int:
        if name not in self.left:
            resource = self.state.consumables.get(name)
            self.left[name] = resource.available if resource is not None else 0
        return self.left[name]

    def waits(self, job: Job) -> bool:
        """True when ``job`` cannot have what it needs in this pass; the resources it is short
        of are then kept for it. Cost: O(resources it names)."""
        if not job.spec.consumables and job.multinode is None:
            return False  # the common case, once per job scanned: no allocation
        need = needs(job)
        short = [n for n, q in need.items() if n in self.kept or self._left(n) < q]
        self.kept.update(short)
        return bool(short)

    def take(self, job: Job) -> None:
        if not job.spec.consumables and job.multinode is None:
            return
        for name, quantity in needs(job).items():
            self.left[name] = self._left(name) - quantity


def hold(state: State, job: Job) -> None:
    """A new attempt of ``job`` (or of a node of a multi-node job) takes its needs."""
    for name, quantity in job.spec.consumables:
        resource = state.consumables[name]
        if resource.resource_type == REPLENISHABLE:
            resource.in_use += quantity
        else:
            resource.total -= quantity
            state.changes.touch("consumable_resource", name)


def release(state: State, job: Job) -> None:
    """The attempt of ``job`` ended: its REPLENISHABLE units return."""
    for name, quantity in job.spec.consumables:
        resource = state.consumables.get(name)
        if resource is not None and resource.resource_type == REPLENISHABLE:
            resource.in_use -= quantity


def held_by_attempts(state: State) -> Counter[str]:
    """The REPLENISHABLE units live attempts hold, by resource: what ``in_use`` must equal."""
    held: Counter[str] = Counter()
    for node in state.nodes.values():
        for aid in node.attempts:
            job = state.jobs.get(aid.rpartition("/")[0])
            if job is None:
                continue
            for name, quantity in job.spec.consumables:
                resource = state.consumables.get(name)
                if resource is not None and resource.resource_type == REPLENISHABLE:
                    held[name] += quantity
    return held
