"""A node's GPUs: what it has, which are in service, and which attempt holds which.

Vocabulary:
    inventory       ``Node.gpus``: every GPU the node is known to have, in service or not, so
                    ``capacity.gpus == len(node.gpus)`` (a job needing more than the largest
                    node's inventory is a MISCONFIGURATION; one waiting for a board out of
                    service just waits).
    out of service  ``Node.gpus_out``: id -> why. Neither free nor placeable; an attempt that
                    already holds it keeps it until it ends.
    holder          the live attempt whose allocation names a GPU (``holders``).

Rules, so that one board never serves two jobs and a lost board never takes others with it:

* At a **join** (the agent's hello) its list replaces the inventory: a changed config may add or
  remove GPUs. A GPU that a live attempt still holds but the agent no longer offers stays in the
  inventory, out of service, until that attempt ends; then it leaves.
* At a **later look** (``NodeGpusChanged``, the agent's periodic nvidia-smi) a GPU missing from
  the list goes out of service with a reason (a board fallen off the bus), one listed again comes
  back, a new one is added. Only the missing GPU changes; the node's others stay as they were.
* A **UUID is one physical board**: a node offering a UUID that another node has in service gets
  it out of service, naming the other node (two host names for one machine, a copied config).
  Index ids ("0") are only meaningful on their own host and are not compared across nodes.
* ``free_gpus`` = in service minus held, recomputed here after every change.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpcbatch.core.model import Gpu, Node, Resources, parse_attempt_id
from hpcbatch.core.state import State

GONE = "GPU_OUT_OF_SERVICE"
BACK = "GPU_IN_SERVICE"


def is_uuid(gpu_id: str) -> bool:
    """A board's UUID (``GPU-…``, ``MIG-…``) rather than an index known only to its host."""
    return not gpu_id.isdigit()


def describe(gpu: Gpu) -> str:
    return gpu.id if gpu.id == str(gpu.index) else f"{gpu.id} (index {gpu.index})"


def holders(state: State, node: Node) -> dict[str, str]:
    """GPU id -> the attempt id holding it, for the live attempts ``node`` holds."""
    held: dict[str, str] = {}
    for aid in node.attempts:
        parsed = parse_attempt_id(aid)
        job = state.jobs.get(parsed[0]) if parsed is not None else None
        if job is None or not job.attempts or job.attempts[-1].node != node.name:
            continue
        for gpu_id in job.attempts[-1].gpus:
            held[gpu_id] = aid
    return held


def join(state: State, node: Node, offered: Iterable[Gpu], now: int, cause: str) -> None:
    """The agent's hello: ``offered`` replaces the inventory (see the module's rules)."""
    offered = _unique(offered)
    held = holders(state, node)
    ids = {gpu.id for gpu in offered}
    before = {gpu.id: gpu for gpu in node.gpus}
    kept = [before.get(g) or _placeholder(g) for g in sorted(held) if g not in ids]
    out = {gpu.id: _unoffered(node, gpu) for gpu in kept}
    out.update(_claimed_elsewhere(state, node, offered))
    for gpu in offered:
        if gpu.id in node.gpus_out and gpu.id not in out:
            _journal(state, node, now, cause, BACK, f"{describe(gpu)} is offered again")
    for gpu_id, reason in out.items():
        if node.gpus_out.get(gpu_id) != reason:
            _journal(state, node, now, cause, GONE, reason)
    node.gpus = (*offered, *kept)
    node.gpus_out = out
    refresh(node, held)


def look(state: State, node: Node, listed: Iterable[Gpu], now: int, cause: str) -> None:
    """A later nvidia-smi of a running agent: missing GPUs go out of service, listed ones that
    were out come back, new ones join (see the module's rules)."""
    listed = _unique(listed)
    ids = {gpu.id for gpu in listed}
    out = dict(node.gpus_out)
    for gpu in node.gpus:
        if gpu.id not in ids and gpu.id not in out:
            out[gpu.id] = f"{describe(gpu)} is no longer listed by nvidia-smi on {node.name}"
            _journal(state, node, now, cause, GONE, out[gpu.id])
    claimed = _claimed_elsewhere(state, node, listed)
    for gpu in listed:
        if gpu.id in claimed:
            if out.get(gpu.id) != claimed[gpu.id]:
                _journal(state, node, now, cause, GONE, claimed[gpu.id])
            out[gpu.id] = claimed[gpu.id]
        elif gpu.id in out:
            del out[gpu.id]
            _journal(state, node, now, cause, BACK, f"{describe(gpu)} is listed again")
    known = {gpu.id: gpu for gpu in node.gpus}
    known.update((gpu.id, gpu) for gpu in listed)  # a board's details as last listed
    node.gpus = tuple(known.values())
    node.gpus_out = out
    refresh(node, holders(state, node))


def release(state: State, node: Node, gpu_ids: Iterable[str]) -> None:
    """An attempt let go of ``gpu_ids``: back to free if in service; one its agent no longer
    offers at all (kept only while held) leaves the inventory."""
    released = set(gpu_ids)
    if not released:
        return
    offered_out = {
        gpu.id
        for gpu in node.gpus
        if gpu.id in released and node.gpus_out.get(gpu.id) == _unoffered(node, gpu)
    }
    if offered_out:
        node.gpus = tuple(gpu for gpu in node.gpus if gpu.id not in offered_out)
        for gpu_id in offered_out:
            del node.gpus_out[gpu_id]
        state.changes.touch("node", node.name)
    node.free_gpus |= released & node.gpus_in_service
    _sync_capacity(node)


def refresh(node: Node, held: dict[str, str]) -> None:
    """``free_gpus`` and ``capacity.gpus`` from the inventory, what is out and what is held."""
    node.free_gpus = node.gpus_in_service - held.keys()
    _sync_capacity(node)


def _sync_capacity(node: Node) -> None:
    if node.capacity.gpus != len(node.gpus):
        c = node.capacity
        node.capacity = Resources(c.cpu_milli, c.memory_mib, len(node.gpus))


def _unoffered(node: Node, gpu: Gpu) -> str:
    return f"{describe(gpu)} is no longer offered by {node.name}'s agent"


def _placeholder(gpu_id: str) -> Gpu:
    """A held GPU the inventory lost track of (a state from before inventories were kept)."""
    return Gpu(gpu_id, int(gpu_id) if gpu_id.isdigit() else -1)


def _unique(gpus: Iterable[Gpu]) -> list[Gpu]:
    """First of each id (the agent's own checks refuse repeats; this keeps the core safe)."""
    seen: dict[str, Gpu] = {}
    for gpu in gpus:
        seen.setdefault(gpu.id, gpu)
    return list(seen.values())


def _claimed_elsewhere(state: State, node: Node, offered: Iterable[Gpu]) -> dict[str, str]:
    """The UUIDs of ``offered`` that another node already has in service."""
    wanted = {gpu.id: gpu for gpu in offered if is_uuid(gpu.id)}
    if not wanted:
        return {}
    claimed: dict[str, str] = {}
    for other in state.nodes.values():
        if other is node or not other.gpus:
            continue
        for gpu_id in wanted.keys() & other.gpus_in_service:
            claimed[gpu_id] = (
                f"{describe(wanted[gpu_id])} is also offered by node {other.name}: "
                "one GPU can be offered by one node only"
            )
    return claimed


def _journal(state: State, node: Node, now: int, cause: str, event: str, detail: str) -> None:
    state.changes.touch("node", node.name)
    state.journal(now, cause, node.name, event, detail)
