"""Capacity of compute environments made through the API: which nodes each should have, and the
status it reports.

Vocabulary:

- **machine**: the head's own host, as the head measured it (its CPUs, its memory in MiB); the
  core never measures it, it is passed in.
- **API-made LOCAL CE**: ``kind`` LOCAL and ``max_vcpus`` set (``ComputeEnvironment``); the
  embedded ``local`` CE has ``max_vcpus`` None and its nodes come from ``[local]`` in the config.
  A **SLURM CE** is made the same way: its one node is the Slurm bridge (docs/slurm.md), an
  agent on the head's machine whose ``maxvCpus`` vCPUs cap what it has in Slurm at once and
  whose memory is what Slurm's partitions have (the bridge reads it from sinfo).
- **LOCAL node size**: such a CE gets one virtual node, ``<ce>-1``, with ``maxvCpus`` vCPUs and
  the machine's memory in proportion (``memory * maxvCpus // cpus`` MiB); ``maxvCpus`` 0 (or
  none given): no node. A ``maxvCpus`` above the machine's CPUs is refused.

``wanted_local_nodes`` is what the head's ``ce_nodes`` supervises: it compares it with the nodes
it runs and starts, resizes or retires the difference. ``ce_status`` is what
DescribeComputeEnvironments says: computed from the nodes when asked, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcbatch.core.model import ComputeEnvironment, NodeState
from hpcbatch.core.state import State
from hpcbatch.errors import ValidationError

HEALTHY = "ComputeEnvironment Healthy"


@dataclass(frozen=True, slots=True)
class Machine:
    cpus: int
    memory_mib: int


HEAD_NODE_KINDS = ("LOCAL", "SLURM")  # an API-made CE of these gets one node the head runs


@dataclass(frozen=True, slots=True)
class LocalNodeSize:
    """One virtual node on the head's machine for an API-made LOCAL CE (``memory_mib`` 0 for a
    SLURM CE's bridge: whatever Slurm has)."""

    name: str
    ce: str
    vcpus: int
    memory_mib: int
    kind: str = "LOCAL"


def local_node_name(ce: str) -> str:
    return f"{ce}-1"


def is_api_local(ce: ComputeEnvironment) -> bool:
    """An API-made LOCAL or SLURM CE: its one node is an agent the head runs on its machine."""
    return ce.kind in HEAD_NODE_KINDS and ce.max_vcpus is not None


def check_local_size(max_vcpus: int, machine: Machine, field: str) -> None:
    """A LOCAL CE's virtual node cannot have more vCPUs than the machine has CPUs."""
    if max_vcpus > machine.cpus:
        raise ValidationError(
            field,
            f"{max_vcpus} is more than this machine's {machine.cpus} CPUs (a LOCAL compute "
            f"environment's node runs on the head's machine; use {machine.cpus} or fewer, or "
            "an SSH compute environment for more)",
        )


def local_size(ce: ComputeEnvironment, machine: Machine) -> LocalNodeSize | None:
    """The node ``ce`` should have now; None: none (not API-made LOCAL, or maxvCpus 0)."""
    if not is_api_local(ce) or not ce.max_vcpus or ce.status == "DELETING":
        return None
    if ce.kind == "SLURM":
        return LocalNodeSize(local_node_name(ce.name), ce.name, ce.max_vcpus, 0, "SLURM")
    memory = max(1, machine.memory_mib * ce.max_vcpus // max(1, machine.cpus))
    return LocalNodeSize(local_node_name(ce.name), ce.name, ce.max_vcpus, memory)


def wanted_local_nodes(state: State, machine: Machine) -> dict[str, LocalNodeSize]:
    """Every virtual node the API-made LOCAL CEs should have, by node name."""
    wanted = {}
    for ce in state.ces.values():
        size = local_size(ce, machine)
        if size is not None:
            wanted[size.name] = size
    return wanted


def connected_vcpus(state: State, ce: str) -> int:
    """vCPUs of the CE's nodes whose agents are connected (ONLINE or draining)."""
    return sum(
        n.capacity.cpu_milli // 1000
        for n in state.nodes.values()
        if n.ce == ce and n.state is not NodeState.DOWN
    )


def ce_status(state: State, ce: ComputeEnvironment) -> tuple[str, str]:
    """``(status, statusReason)`` as DescribeComputeEnvironments reports them."""
    if ce.status == "DELETING":
        running = sum(len(n.attempts) for n in state.nodes.values() if n.ce == ce.name)
        return "DELETING", f"waiting for {running} running job(s) on its nodes to end"
    if ce.ce_type == "UNMANAGED":
        return _unmanaged_status(state, ce)
    if not is_api_local(ce):
        return ce.status, HEALTHY
    name = local_node_name(ce.name)
    node = state.nodes.get(name)
    if not ce.max_vcpus:
        if node is not None:
            return "UPDATING", f"releasing node {name}: maxvCpus is 0"
        return "VALID", "no node: maxvCpus is 0"
    if node is None and ce.kind == "SLURM":
        return "CREATING", f"starting node {name}, its Slurm bridge ({ce.max_vcpus} vCPUs)"
    if node is None:
        return "CREATING", f"starting node {name} ({ce.max_vcpus} vCPUs) on the head's machine"
    if node.state is NodeState.DOWN:
        return "INVALID", f"node {name} is down: {node.state_reason}"
    if node.capacity.cpu_milli != ce.max_vcpus * 1000:
        return "UPDATING", f"resizing node {name} to {ce.max_vcpus} vCPUs"
    return "VALID", HEALTHY


def _unmanaged_status(state: State, ce: ComputeEnvironment) -> tuple[str, str]:
    nodes = [n for n in state.nodes.values() if n.ce == ce.name]
    if not nodes:
        return "VALID", f"no hosts yet: an admin adds them with `hpcbatch nodes add --ce {ce.name}`"
    if all(n.state is NodeState.DOWN for n in nodes):
        why = "; ".join(f"{n.name}: {n.state_reason}" for n in sorted(nodes, key=lambda n: n.name))
        return "INVALID", f"every host is down ({why})"
    return "VALID", HEALTHY
