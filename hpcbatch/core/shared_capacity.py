"""Limits that several nodes share: the machine their agents run on, and a compute environment's
``maxvCpus``. Placement checks them on top of each node's own free resources.

Vocabulary:

- **machine**: the host a node's agent runs on when other nodes' agents run there too: the
  head's machine for every LOCAL node (the embedded ``local`` CE's ``local-N`` and each
  API-made LOCAL CE's ``<ce>-1``). Each such node is sized on its own (``maxvCpus``, or
  ``[local] vcpus``), so together they may offer more than the machine has; its CPUs and
  memory (``Node.machine_capacity``, as the head measured them) bound what the jobs on all of
  them hold at once. A node with ``machine`` None shares no machine with another node.
- **CE ceiling**: an SSH MANAGED CE's ``maxvCpus``: a pool host of unknown size may connect and
  push the CE's nodes past it until the head releases it (``host_pools``); meanwhile the jobs
  on the CE's nodes hold no more than ``maxvCpus`` vCPUs.
- **group**: the nodes one limit covers (``("machine", name)`` or ``("ce", name)``); its
  **room** is its limit less what the attempts on its nodes hold now.

A node belongs to at most one group of each kind; nodes of no group cost nothing here.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpcbatch.core.model import ComputeEnvironment, Node, Resources, format_vcpus, plural
from hpcbatch.core.state import State

Group = tuple[str, str]  # ("machine", name) | ("ce", name)
UNBOUNDED = 1 << 62  # a dimension a limit does not bound


def ce_ceiling(ce: ComputeEnvironment | None) -> Resources | None:
    """The vCPUs an SSH MANAGED CE's jobs may hold at once: its maxvCpus; None: no ceiling."""
    if ce is None or ce.kind != "SSH" or ce.ce_type != "MANAGED" or ce.max_vcpus is None:
        return None
    return Resources(ce.max_vcpus * 1000, UNBOUNDED, UNBOUNDED)


def groups_of(state: State, node: Node) -> list[Group]:
    groups: list[Group] = []
    if node.machine is not None and node.machine_capacity is not None:
        groups.append(("machine", node.machine))
    if ce_ceiling(state.ces.get(node.ce)) is not None:
        groups.append(("ce", node.ce))
    return groups


def rooms(state: State) -> dict[Group, Resources]:
    """Each group's room now: its limit less what its nodes' attempts hold. O(nodes)."""
    limit: dict[Group, Resources] = {}
    held: dict[Group, Resources] = {}
    ceilings = {name for name, ce in state.ces.items() if ce_ceiling(ce) is not None}
    for node in state.nodes.values():
        if node.machine is None and node.ce not in ceilings:
            continue  # in no group (``groups_of``): most nodes of most clusters
        for group in groups_of(state, node):
            cap = _limit(state, node, group)
            limit[group] = cap if group not in limit else _least(limit[group], cap)
            held[group] = held.get(group, Resources()) + node.allocated
    return {g: limit[g] - held[g] for g in limit}


def _limit(state: State, node: Node, group: Group) -> Resources:
    if group[0] == "machine":
        capacity = node.machine_capacity
        assert capacity is not None
        return Resources(capacity.cpu_milli, capacity.memory_mib, UNBOUNDED)
    ceiling = ce_ceiling(state.ces.get(node.ce))
    assert ceiling is not None
    return ceiling


def _least(a: Resources, b: Resources) -> Resources:
    return Resources(
        min(a.cpu_milli, b.cpu_milli), min(a.memory_mib, b.memory_mib), min(a.gpus, b.gpus)
    )


def fits(state: State, room: dict[Group, Resources], node: Node, need: Resources) -> bool:
    """``need`` fits in the room of every group of ``node`` (a missing group: no room)."""
    groups = groups_of(state, node)
    return all(g in room and need.fits_in(room[g]) for g in groups)


def has_room(state: State, room: dict[Group, Resources], node: Node) -> bool:
    """Some vCPU and memory left in every group of ``node``."""
    for group in groups_of(state, node):
        left = room.get(group)
        if left is None or left.cpu_milli <= 0 or left.memory_mib <= 0:
            return False
    return True


def fits_together(
    state: State, room: dict[Group, Resources], placed: Iterable[tuple[Node, Resources]]
) -> bool:
    """Every one of ``placed`` at once (a gang's whole nodes) fits the groups' room."""
    wanted: dict[Group, Resources] = {}
    for node, need in placed:
        for group in groups_of(state, node):
            wanted[group] = wanted.get(group, Resources()) + need
    return all(g in room and need.fits_in(room[g]) for g, need in wanted.items())


def book(state: State, room: dict[Group, Resources], node: Node, need: Resources) -> None:
    for group in groups_of(state, node):
        if group in room:
            room[group] = room[group] - need


class Ledger:
    """The groups' room through the placements of one applied plan: measured (O(nodes)) the
    first time a node of a group is checked, then booked as attempts start; ``forget`` after
    holds it did not book (a gang's)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.room: dict[Group, Resources] | None = None

    def fits(self, node: Node, need: Resources) -> bool:
        if not groups_of(self.state, node):
            return True
        if self.room is None:
            self.room = rooms(self.state)
        return fits(self.state, self.room, node, need)

    def book(self, node: Node, need: Resources) -> None:
        if self.room is not None:
            book(self.state, self.room, node, need)

    def forget(self) -> None:
        self.room = None


def overcommitted(state: State) -> str | None:
    """A machine whose nodes' attempts hold more than it has (an invariant): None when none
    does. A CE ceiling is not checked: a lowered maxvCpus lets the jobs running finish."""
    for group, left in sorted(rooms(state).items()):
        if group[0] == "machine" and (left.cpu_milli < 0 or left.memory_mib < 0):
            return f"{group[0]} {group[1]}: its nodes' attempts hold more than its limit ({left})"
    return None


def wait_reason(state: State, nodes: list[Node], need: Resources) -> str | None:
    """Why ``need`` waits though one of ``nodes`` (schedulable, able to hold it) has room of
    its own: the shared limit that has none (None: some node has room everywhere)."""
    own = [n for n in nodes if need.fits_in(n.free)]
    if not own or any(not groups_of(state, n) for n in own):
        return None  # a node with room and no shared limit: not why (O(nodes) spared)
    room = rooms(state)
    if any(fits(state, room, n, need) for n in own):
        return None
    node = own[0]
    group = next(g for g in groups_of(state, node) if not need.fits_in(room.get(g, Resources())))
    members = sorted(n.name for n in state.nodes.values() if group in groups_of(state, n))
    limit = _limit(state, node, group)
    used = limit - room[group]
    if group[0] == "ce":
        return (
            f"waiting for compute environment {group[1]}'s maxvCpus: its jobs hold "
            f"{format_vcpus(used.cpu_milli)} of its {format_vcpus(limit.cpu_milli)} vCPUs; "
            f"needs {need.describe()}"
        )
    return (
        f"waiting for the machine: the jobs on its nodes ({', '.join(members[:5])}"
        f"{' and more' if len(members) > 5 else ''}) hold {format_vcpus(used.cpu_milli)} of its "
        f"{plural(limit.cpu_milli // 1000, 'CPU')} and {used.memory_mib} of its "
        f"{limit.memory_mib} MiB; needs {need.describe()}"
    )
