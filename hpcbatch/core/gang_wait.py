"""Why a multi-node job waits: "waiting for 4 whole nodes: 2 free in [devcluster], 2 busy until
..." — computed from the state when asked, like every other waiting reason (see ``explain``)."""

from __future__ import annotations

from hpcbatch.core.capacity import gang_fit_problem, queue_nodes
from hpcbatch.core.gang import gang_ready
from hpcbatch.core.model import Job, MultiNodeSpec, Node
from hpcbatch.core.plan import Reservation
from hpcbatch.core.slurm_gang import on_slurm, total_need
from hpcbatch.core.state import State


def _busy_until(state: State, node: Node) -> int | None:
    """When every attempt on ``node`` will have ended (by its timeout); None when unknown."""
    latest = 0
    for aid in node.attempts:
        job = state.jobs.get(aid.rpartition("/")[0])
        if job is None or job.spec.timeout_s is None or not job.attempts:
            return None
        started = job.attempts[-1].started_at
        if started is None:
            return None
        latest = max(latest, started + job.spec.timeout_s * 1000)
    return latest


def gang_reason(
    state: State, job: Job, enabled: list[str], reservations: tuple[Reservation, ...]
) -> str:
    shape = job.multinode
    assert shape is not None
    queue = state.queues[job.queue]
    problem = gang_fit_problem(state, queue, shape)
    if problem is not None:
        return problem
    nodes = [n for n in queue_nodes(state, queue) if n.ce in enabled]
    if not nodes:
        return f"waiting for nodes: compute environments [{', '.join(enabled)}] have no nodes"
    mine = [r for r in reservations if r.job_id == job.job_id]
    if all(on_slurm(state, n.name) for n in nodes):
        reason = _slurm_reason(nodes, shape, gang_ready(state, job))
        return reason + (_reserved(mine[0].at) if mine else "")
    best: tuple[int, int, str] | None = None
    for ce in enabled:
        online = [n for n in nodes if n.ce == ce and n.schedulable]
        idle = sum(1 for n in online if not n.attempts)
        if best is None or (idle, len(online)) > best[:2]:
            best = (idle, len(online), ce)
    assert best is not None
    free, up, ce = best
    wanted = shape.num_nodes
    reason = f"waiting for {wanted} whole nodes: {free} free in [{ce}]"
    short = wanted - free
    busy = [n for n in nodes if n.ce == ce and n.schedulable and n.attempts]
    if short > 0 and busy:
        ends = sorted((_busy_until(state, n) for n in busy), key=lambda t: (t is None, t or 0))
        count = min(short, len(ends))
        at = ends[count - 1]
        until = "their jobs end (no timeout known)" if at is None else f"{at} (epoch ms)"
        reason += f", {count} busy until {until}"
    if short > up - free:
        reason += f", {short - (up - free)} more not ONLINE"
    if not gang_ready(state, job):
        reason += "; its nodes are still stopping from the last attempt"
    if not mine:
        return reason
    return reason + _reserved(mine[0].at, _group_of(state, mine))


def _reserved(at: int | None, where: str = "") -> str:
    when = "when running jobs end" if at is None else f"from {at} (epoch ms)"
    return f"; reserved {when}{where}; smaller jobs backfill around it"


def _slurm_reason(bridges: list[Node], shape: MultiNodeSpec, ready: bool) -> str:
    """A gang for SLURM compute environments waits for room under their cap (slurm_gang)."""
    need = total_need(shape)
    free = ", ".join(f"{n.free.describe()} free on {n.name}" for n in bridges)
    reason = f"waiting for room in Slurm for its {shape.num_nodes} nodes: needs "
    reason += f"{need.describe()} under the maxvCpus cap, {free}"
    return reason if ready else reason + "; its nodes are still stopping from the last attempt"


def _group_of(state: State, mine: list[Reservation]) -> str:
    """The words " in placement group G" when every reserved node is in G, else nothing."""
    groups = set()
    for r in mine:
        node = state.nodes.get(r.node)
        groups.add(None if node is None else node.placement_group)
    group = groups.pop() if len(groups) == 1 else None
    return "" if group is None else f" in placement group {group}"
