"""What the cluster could ever hold: the largest-node checks behind MISCONFIGURATION reasons."""

from __future__ import annotations

from hpcbatch.core.gang import assign
from hpcbatch.core.model import JobQueue, MultiNodeSpec, Node, NodeRange, Resources, format_vcpus
from hpcbatch.core.slurm_gang import fits_ever, on_slurm, total_need
from hpcbatch.core.state import State

MISCONFIGURATION = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"


def queue_nodes(state: State, queue: JobQueue) -> list[Node]:
    ces = set(queue.ce_order)
    return [n for n in state.nodes.values() if n.ce in ces]


def largest_fit_problem(state: State, queue: JobQueue, need: Resources) -> str | None:
    """The MISCONFIGURATION reason when no node of the queue's CEs could ever hold ``need``.

    None when some node could, or when the queue has no nodes at all yet (nothing to judge by).
    """
    ces = set(queue.ce_order)
    for node in state.nodes.values():  # the first node that fits ends it: each submission asks
        if node.ce in ces and need.fits_in(node.capacity):
            return None
    nodes = queue_nodes(state, queue)
    if not nodes:
        return None
    where = f"compute environments [{', '.join(queue.ce_order)}]"
    checks = (
        (need.cpu_milli, max(n.capacity.cpu_milli for n in nodes), "vCPUs", format_vcpus),
        (need.memory_mib, max(n.capacity.memory_mib for n in nodes), "MiB of memory", str),
        (need.gpus, max(n.capacity.gpus for n in nodes), "GPUs", str),
    )
    for wanted, largest, unit, fmt in checks:
        if wanted > largest:
            return (
                f"{MISCONFIGURATION} - needs {fmt(wanted)} {unit}; the largest node in {where} "
                f"has {fmt(largest)}"
            )
    return (
        f"{MISCONFIGURATION} - needs {need.describe()} on one node; no node in {where} "
        "has all of it"
    )


def gang_fit_problem(state: State, queue: JobQueue, shape: MultiNodeSpec) -> str | None:
    """The MISCONFIGURATION reason when no one compute environment of the queue, counting every
    node whatever its state, has ``num_nodes`` distinct nodes that could each hold its node's
    needs; None when one has, or when the queue has no nodes yet."""
    nodes = queue_nodes(state, queue)
    if not nodes:
        return None
    by_ce = [[n for n in nodes if n.ce == ce] for ce in queue.ce_order]
    if any(_could_hold(state, members, shape) for members in by_ce):
        return None
    where = f"compute environments [{', '.join(queue.ce_order)}]"
    bridges = [m for m in by_ce if m and on_slurm(state, m[0].name)]
    if bridges and len(bridges) == len([m for m in by_ce if m]):  # only SLURM CEs: their cap
        need = total_need(shape)
        most = max((n.capacity for m in bridges for n in m), key=lambda r: r.cpu_milli)
        return (
            f"{MISCONFIGURATION} - needs {need.describe()} in Slurm at once for its "
            f"{shape.num_nodes} nodes; the SLURM compute environments in {where} allow at "
            f"most {most.describe()} (maxvCpus)"
        )
    by_ce = [m for m in by_ce if not (m and on_slurm(state, m[0].name))]
    if not by_ce:
        by_ce = [[]]
    largest = max(len(members) for members in by_ce)
    if largest < shape.num_nodes:
        return (
            f"{MISCONFIGURATION} - needs {shape.num_nodes} nodes of one compute environment; "
            f"the largest in {where} has {largest}"
        )
    for node_range in shape.ranges:
        problem = largest_fit_problem(state, queue, node_range.spec.resources)
        if problem is not None:
            detail = problem.removeprefix(f"{MISCONFIGURATION} - ")
            return f"{MISCONFIGURATION} - node {_range(node_range)} {detail}"
    return (
        f"{MISCONFIGURATION} - needs {shape.num_nodes} nodes, each holding its node's needs, "
        f"in one compute environment; none in {where} has that many"
    )


def _could_hold(state: State, members: list[Node], shape: MultiNodeSpec) -> bool:
    """One CE's nodes could hold the gang: a SLURM CE's bridge within its cap, else distinct
    nodes each holding its node's needs."""
    if members and on_slurm(state, members[0].name):
        return any(fits_ever(n, shape) for n in members)
    return assign(members, shape, lambda n, need: need.fits_in(n.capacity)) is not None


def _range(node_range: NodeRange) -> str:
    if node_range.first == node_range.last:
        return str(node_range.first)
    return f"{node_range.first}:{node_range.last}"
