"""A multi-node job on a SLURM compute environment: Slurm places its nodes, hpcbatch its gang.

A SLURM CE has one node, its bridge (docs/slurm.md), whose capacity is the CE's cap on what
hpcbatch has in Slurm at once (``maxvCpus``), not a machine. So a gang there is not N whole
nodes: its N node jobs are all placed on the bridge, each holding its own node's needs (their
sum within the cap), and the bridge hands them to Slurm as ONE job of N nodes (``sbatch -N``,
one task per node through ``srun``): Slurm picks the machines and starts every node at once.

Rules that differ from a gang on LOCAL or SSH nodes (``gang``, ``gang_life``):
- **Placement**: all N on the bridge when the sum of the nodes' needs fits what is free there
  (and the reservations and shared limits allow it); never by halves.
- **No start barrier**: the nodes are launched together, since Slurm starts them together (the
  main node held back would hold every other node's launch back with it).
- **Addresses**: the nodes' addresses, the hostfiles and the main node's address are Slurm's
  to know once it allocates: the bridge's batch script sets them (``HPCBATCH_HOSTS``,
  ``AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS``...), so the head sets none of them.
- **Reservations**: a blocked gang reserves its total on the bridge, as a single job would
  (``scheduler._reserve``): backfill keeps later jobs from eating the cap it waits for unless
  they end first, so a stream of small jobs cannot starve it.
Everything else (ends, retries, terminate, stopping the others when the main node exits) is the
same gang life.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpcbatch.core import shared_capacity
from hpcbatch.core.model import Job, JobStatus, MultiNodeSpec, Node, Resources, node_job_id
from hpcbatch.core.pass_state import FreeNode, Pass, allowed, start_reason, take
from hpcbatch.core.plan import Placement
from hpcbatch.core.state import State

SLURM = "SLURM"


def on_slurm(state: State, node_name: str) -> bool:
    """``node_name`` is a SLURM compute environment's bridge."""
    node = state.nodes.get(node_name)
    ce = state.ces.get(node.ce) if node is not None else None
    return ce is not None and ce.kind == SLURM


def tier_is_slurm(state: State, tier: Sequence[FreeNode]) -> bool:
    return bool(tier) and on_slurm(state, tier[0].node.name)


def total_need(shape: MultiNodeSpec) -> Resources:
    """What the gang's nodes need together."""
    total = Resources()
    for node_range in shape.ranges:
        need = node_range.spec.resources
        count = node_range.last - node_range.first + 1
        total = total + Resources(
            need.cpu_milli * count, need.memory_mib * count, need.gpus * count
        )
    return total


def fits_ever(node: Node, shape: MultiNodeSpec) -> bool:
    """The bridge's cap could hold the whole gang at once."""
    return total_need(shape).fits_in(node.capacity)


def try_slurm_gang(run: Pass, tier: list[FreeNode], parent: Job, end: int | None) -> bool:
    """Every node of ``parent`` on one bridge of ``tier`` (a SLURM CE's), or none."""
    shape = parent.multinode
    assert shape is not None
    total = total_need(shape)
    for entry in tier:
        if not total.fits_in(entry.free) or not allowed(run, entry, total, end):
            continue
        reason = start_reason(run, parent.job_id)
        run.gate.take(parent)
        where = f"{reason} as one Slurm job of {shape.num_nodes} nodes via {entry.node.name}"
        for index in range(shape.num_nodes):
            need = shape.spec_of(index).resources
            gpus = take(run, entry, need, need.gpus, end)
            job_id = node_job_id(parent.job_id, index)
            blocked = run.first_blocked is not None
            run.placements.append(
                Placement(job_id, entry.node.name, gpus, blocked, where, gang=parent.job_id)
            )
        return True
    return False


def placeable(state: State, parent: Job, placements: Sequence[Placement], node: Node) -> bool:
    """Every node of the gang placed on ``node`` (a bridge), each still PENDING, their needs
    and GPUs (distinct, free) within what the bridge has free."""
    shape = parent.multinode
    assert shape is not None
    total = Resources()
    gpus: list[str] = []
    for index, p in enumerate(placements):
        job = state.jobs.get(p.job_id)
        if job is None or p.job_id != node_job_id(parent.job_id, index) or p.node != node.name:
            return False
        if job.status is not JobStatus.PENDING or len(p.gpus) != job.spec.resources.gpus:
            return False
        total = total + job.spec.resources
        gpus.extend(p.gpus)
    if len(placements) != shape.num_nodes or not node.schedulable:
        return False
    if len(set(gpus)) != len(gpus) or not set(gpus) <= node.free_gpus:
        return False
    if not total.fits_in(node.free):
        return False
    if not shared_capacity.groups_of(state, node):
        return True
    return shared_capacity.fits_together(state, shared_capacity.rooms(state), [(node, total)])
