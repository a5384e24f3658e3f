"""Preemption for a multi-node job (a gang) of a quota share: which whole nodes to free, and
the fewest jobs to stop for them.

A gang runs on ``num_nodes`` distinct **whole** nodes of one compute environment (``gang``), so
a node serves it only once everything on it has stopped. For each CE of the queue, in order, a
node of it is a **candidate** when its capacity can hold some node of the gang, nothing was
placed there earlier in the pass, nobody else claimed room being freed there, and every attempt
on it either is stopping already (a kill under way that is not for another waiting job) or
belongs to a job of ``pool`` (the jobs that may be stopped, in order of preference). A
candidate's **needs** are the pool jobs on it; a multi-node job of the pool is one job whose
stop frees each of its nodes.

Choice (a weighted set cover, greedy): nodes that need nothing come first; then, step by step,
the candidate whose new victims free the most candidate nodes per victim (each victim counted
once: stopping a gang borrower frees all of its nodes), the most preferred victims first among
equals (the newest borrowers; for in-share preemption the lowest priority, then the newest),
until the gang fits on the freed nodes (``gang.assign``) and, for in-share preemption, its
share's quota has room (the preferred victims first). Then every victim whose room is not
needed is dropped again (the least preferred tried first), so no victim is stopped for nothing.
The CE needing the fewest victims wins.

How good it is: a gang borrower holds its nodes alone, so single-node victims never sit on two
candidates; when every candidate can hold any node of the gang (one node shape, or a gang of
one range), the greedy takes the gangs freeing the most nodes first, then the nodes with the
fewest victims, which is optimal. It can be beaten when nodes differ in size and the gang's
ranges in needs: it may count as a gain a node of a shape the gang does not lack (e.g. a small
node freed by one victim, where the gang lacks a big node) and stop one victim too many before
the pruning, which only drops victims one at a time. For in-share preemption the quota is
filled in order of preference, not by fewest. Set cover is NP-hard; the greedy costs
O(gang nodes x candidates^2) per blocked gang (docs/benchmarks.md: 16 ms for 40 nodes among 54
candidates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hpcbatch.core.gang import assign
from hpcbatch.core.model import Job, MultiNodeSpec, Resources
from hpcbatch.core.pass_state import FreeNode
from hpcbatch.core.quotas import Running

Enough = Callable[[set[str]], bool]  # whether stopping these victim keys leaves quota room


def victim_key(job: Job) -> str:
    """The job a preemption stops: a node of a multi-node job stands for its whole job."""
    return job.parent_id if job.node_index is not None and job.parent_id else job.job_id


@dataclass(slots=True)
class Candidate:
    entry: FreeNode
    needs: frozenset[str]  # victim keys to stop before the node is whole


@dataclass(slots=True)
class GangChoice:
    nodes: list[FreeNode]  # the nodes the gang is given, in node index order
    victims: list[str]  # victim keys, in order of preference


def held_on(entry: FreeNode, jobs: dict[str, Job]) -> Resources:
    """What the attempts on ``entry``'s node hold (so room booked in the pass shows)."""
    total = Resources()
    for aid in entry.node.attempts:
        job = jobs.get(aid.rpartition("/")[0])
        if job is not None and job.attempts:
            total = total + job.attempts[-1].resources
    return total


def candidates(
    tier: list[FreeNode],
    jobs: dict[str, Job],
    pool: set[str],
    freeing: Callable[[Job], bool],
    blocked_nodes: set[str],
) -> list[Candidate]:
    """The nodes of one CE that could be made whole for the gang, with what each needs."""
    found: list[Candidate] = []
    for entry in tier:
        if entry.node.name in blocked_nodes:
            continue
        room = entry.free + held_on(entry, jobs)
        capacity = entry.node.capacity
        if room.cpu_milli < capacity.cpu_milli or room.memory_mib < capacity.memory_mib:
            continue  # something was placed there in this pass
        needs: set[str] = set()
        stoppable = True
        for aid in entry.node.attempts:
            job = jobs.get(aid.rpartition("/")[0])
            if job is None or freeing(job):
                continue
            key = victim_key(job)
            stoppable = stoppable and key in pool
            needs.add(key)
        if stoppable:  # else a job that may not be stopped: never whole for the gang
            found.append(Candidate(entry, frozenset(needs)))
    return found


def _fits(c: Candidate, need: Resources) -> bool:
    return need.fits_in(c.entry.node.capacity)


def _placed(cands: list[Candidate], victims: set[str], shape: MultiNodeSpec) -> list[Candidate]:
    return assign([c for c in cands if c.needs <= victims], shape, _fits) or []


def choose_in_tier(
    cands: list[Candidate], shape: MultiNodeSpec, rank: dict[str, int], enough: Enough
) -> GangChoice | None:
    """The fewest victims (greedy, see the module) that free room for the whole gang."""
    cands = [c for c in cands if any(_fits(c, r.spec.resources) for r in shape.ranges)]
    victims: set[str] = set()
    while not _placed(cands, victims, shape):
        best: tuple[float, list[int], str, frozenset[str]] | None = None
        for c in cands:
            new = c.needs - victims
            if not new:
                continue
            after = victims | new
            gain = sum(1 for o in cands if o.needs <= after and not o.needs <= victims)
            score = (len(new) / gain, sorted(rank[v] for v in new), c.entry.node.name, new)
            if best is None or score[:3] < best[:3]:
                best = score
        if best is None:
            return None  # the CE cannot hold the gang
        victims |= best[3]
    for key in sorted(rank, key=rank.__getitem__):  # quota room (in-share): the preferred first
        if enough(victims):
            break
        victims.add(key)
    if not enough(victims):
        return None
    for key in sorted(victims, key=rank.__getitem__, reverse=True):  # drop what is not needed
        fewer = victims - {key}
        if _placed(cands, fewer, shape) and enough(fewer):
            victims = fewer
    nodes = _placed(cands, victims, shape)
    used = set().union(*(c.needs for c in nodes)) if nodes else set()
    for key in sorted(victims - used, key=rank.__getitem__, reverse=True):
        if enough(victims - {key}):
            victims.discard(key)  # not on a node the gang is given, and not for the quota
    return GangChoice([c.entry for c in nodes], sorted(victims, key=rank.__getitem__))


def choose(
    tiers: list[list[FreeNode]],
    shape: MultiNodeSpec,
    jobs: dict[str, Job],
    pool: list[str],
    freeing: Callable[[Job], bool],
    blocked_nodes: set[str],
    enough: Enough,
) -> GangChoice | None:
    """Over the queue's CEs: the choice with the fewest victims, the most preferred between
    equals, the earlier CE between those (``pool``: victim keys, most preferred first)."""
    rank = {key: i for i, key in enumerate(pool)}
    best: GangChoice | None = None
    for tier in tiers:
        cands = candidates(tier, jobs, set(pool), freeing, blocked_nodes)
        choice = choose_in_tier(cands, shape, rank, enough)
        if choice is None:
            continue
        key = (len(choice.victims), [rank[v] for v in choice.victims])
        if best is None or key < (len(best.victims), [rank[v] for v in best.victims]):
            best = choice
    return best


def tiers_of(flat: list[FreeNode]) -> list[list[FreeNode]]:
    """``flat`` (the queue's nodes, CE by CE in its order) split back into its CEs."""
    tiers: dict[str, list[FreeNode]] = {}
    for entry in flat:
        tiers.setdefault(entry.node.ce, []).append(entry)
    return list(tiers.values())


def freed_by(runs: list[Running]) -> dict[str, Resources]:
    """What stopping each victim frees (all of a gang's nodes), by victim key."""
    freed: dict[str, Resources] = {}
    for r in runs:
        key = victim_key(r.job)
        freed[key] = freed.get(key, Resources()) + r.attempt.resources
    return freed
