"""What the cluster could ever hold: the largest-node checks behind MISCONFIGURATION reasons."""

from __future__ import annotations

from hpcbatch.core.model import JobQueue, Node, Resources, format_vcpus
from hpcbatch.core.state import State

MISCONFIGURATION = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"


def queue_nodes(state: State, queue: JobQueue) -> list[Node]:
    ces = set(queue.ce_order)
    return [n for n in state.nodes.values() if n.ce in ces]


def largest_fit_problem(state: State, queue: JobQueue, need: Resources) -> str | None:
    """The MISCONFIGURATION reason when no node of the queue's CEs could ever hold ``need``.

    None when some node could, or when the queue has no nodes at all yet (nothing to judge by).
    """
    nodes = queue_nodes(state, queue)
    if not nodes or any(need.fits_in(n.capacity) for n in nodes):
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
