"""Which hosts of the head's host pools an SSH compute environment holds: a pure decision.

Vocabulary:

- **host pool**: a named list of SSH hosts in the head's config (``[[host_pools]]``), in order;
  a MANAGED CE of ``computeResources.type`` SSH names its pools in ``instanceTypes``.
- **held host**: a pool host a CE has taken: the head supervises it and its node is in the CE.
  A host is held by at most one CE at a time.
- **target**: the vCPUs the CE should have connected: ``desiredvCpus`` (``minvCpus`` when it
  is not given), never below ``minvCpus`` nor above ``maxvCpus``.
- **unreachable**: a host the head could not connect lately, with why (the head's memory: it
  forgets it after a while and tries the host again).

``plan_pool`` takes one step towards the target, which grows with demand: the vCPUs the CE's
nodes hold now plus what the RUNNABLE jobs of its queues ask for (``waiting_vcpus``), never
above ``maxvCpus``, never below the floor ``desiredvCpus``/``minvCpus``. While a taken host is
still connecting it waits; below the target it takes the next free reachable host of the CE's
pools, in the order the pools and their hosts are listed, skipping a host whose known ``vcpus``
(its config's, else what it measured when it last connected) would pass ``maxvCpus``; above
it, it releases hosts idle for ``release_after_ms``, last taken first, while what stays still
covers the target.

**maxvCpus is a ceiling**: a host of unknown size that connects and pushes the CE over it is
released at once (and, its size now known, not taken again while it would not fit); until it
is gone the core's placement keeps the CE's jobs within maxvCpus (``shared_capacity``).

A held host that never connected (DOWN, no capacity, no attempt) is released at once: the head
marks it unreachable and the next host is taken instead. Retrying such a host does not flip an
INVALID CE to CREATING: it stays INVALID with its reason (``previous``) until a host connects
or the CE is updated. The head acts on the plan (``head/ce_hosts.py``) and asks again; each
call is cheap (O(held + pool hosts + the RUNNABLE jobs counted up to ``maxvCpus``)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hpcbatch.core.model import ComputeEnvironment, Job, Node, NodeState
from hpcbatch.core.pool_fit import Judge, PoolHost, PoolHosts, ce_pools
from hpcbatch.core.state import State

__all__ = ["Demand", "PoolHost", "PoolPlan", "ce_pools", "plan_pool", "waiting_vcpus"]

HEALTHY = "ComputeEnvironment Healthy"


@dataclass(frozen=True, slots=True)
class Demand:
    """What asks a CE for more or fewer hosts: ``waiting_vcpus`` (``waiting_vcpus()``) and how
    long each held host has held no attempt (``idle_ms``: host -> ms; absent: busy or not
    known idle); a host above the floor is released once idle for ``release_after_ms``."""

    waiting_vcpus: int = 0
    idle_ms: Mapping[str, int] = field(default_factory=dict)
    release_after_ms: int = 60_000


@dataclass(frozen=True, slots=True)
class PoolPlan:
    take: tuple[str, ...]
    release: tuple[str, ...]
    status: str
    reason: str
    too_big: tuple[str, ...] = ()  # of ``release``: connected past maxvCpus (the head warns)


def uses_pools(ce: ComputeEnvironment) -> bool:
    return ce.kind == "SSH" and ce.ce_type == "MANAGED" and bool(ce_pools(ce))


def target_vcpus(ce: ComputeEnvironment) -> int:
    high = ce.max_vcpus or 0
    wanted = ce.min_vcpus if ce.desired_vcpus is None else ce.desired_vcpus
    return max(0, min(max(wanted, ce.min_vcpus), high))


def _vcpus(node: Node) -> int:
    return node.capacity.cpu_milli // 1000


def _never_connected(node: Node) -> bool:
    return node.state is NodeState.DOWN and node.capacity.cpu_milli == 0 and not node.attempts


def waiting_vcpus(
    state: State, ce: ComputeEnvironment, cap: int, pools: PoolHosts | None = None
) -> int:
    """vCPUs the RUNNABLE jobs of the ENABLED queues using ``ce`` ask for (a RUNNABLE job is
    one no connected node could take at the last pass), counted up to ``cap`` vCPUs: the cost
    is O(jobs counted), not O(queued). A job no host of ``pools`` could ever hold
    (``pool_fit.Judge``) is not counted (hosts taken for it would only idle) but is read:
    such jobs add O(their count) and O(shapes x pool hosts), the verdict kept per shape."""
    if ce.state != "ENABLED":
        return 0
    milli, cap_milli = 0, cap * 1000
    judge = None if pools is None else Judge(ce, pools)
    for queue in state.queues.values():
        if queue.state != "ENABLED" or ce.name not in queue.ce_order:
            continue
        for key in state.runnable.get(queue.name, ()):
            job = state.jobs[key[3]]
            if judge is not None and judge.hopeless(job):
                continue
            milli += _job_milli(job)
            if milli >= cap_milli:
                return cap
    return -(-milli // 1000)


def _job_milli(job: Job) -> int:
    shape = job.multinode
    if shape is None:
        return job.spec.resources.cpu_milli
    return sum(shape.spec_of(i).resources.cpu_milli for i in range(shape.num_nodes))


def plan_pool(
    ce: ComputeEnvironment,
    pools: PoolHosts,
    held: Mapping[str, str],
    nodes: Mapping[str, Node],
    unreachable: Mapping[str, str],
    demand: Demand = Demand(),
    previous: tuple[str, str] | None = None,
) -> PoolPlan:
    """``held``: host -> the CE holding it (every CE's, in the order taken); ``nodes``: the
    state's; ``unreachable``: host -> why it could not be connected lately; ``demand``: what
    waits for the CE and how long each held host has been idle; ``previous``: the status this
    CE reported last (None: none since it was made or updated)."""
    mine = [h for h, owner in held.items() if owner == ce.name]
    failed = [h for h in mine if h in nodes and _never_connected(nodes[h])]
    pending = [h for h in mine if h not in nodes]
    live = [
        h
        for h in mine
        if h in nodes and nodes[h].state is not NodeState.DOWN and nodes[h].retiring is None
    ]
    high = ce.max_vcpus or 0
    over = _overshoot(live, nodes, high)
    live = [h for h in live if h not in over]
    connected = sum(_vcpus(nodes[h]) for h in live)
    used = sum(-(-nodes[h].allocated.cpu_milli // 1000) for h in live)
    target = max(target_vcpus(ce), min(high, used + demand.waiting_vcpus))
    take: tuple[str, ...] = ()
    release = list(failed) + over
    if not pending and connected < target:
        candidate = _next_free(ce, pools, held, unreachable, high - connected)
        take = () if candidate is None else (candidate,)
    elif not pending and connected > target:
        for h in reversed(live):
            node = nodes[h]
            idle = demand.idle_ms.get(h, 0) >= demand.release_after_ms
            if idle and not node.attempts and connected - _vcpus(node) >= target:
                release.append(h)
                connected -= _vcpus(node)
    gone = {**unreachable, **{h: nodes[h].state_reason for h in failed}}
    status, reason = _status(ce, pools, gone, bool(live), bool(pending or take))
    if status == "CREATING" and previous is not None and previous[0] == "INVALID":
        status, reason = previous  # retrying a host that failed: INVALID until one connects
    if status == "VALID" and connected < target:
        reason = (
            f"{connected} of the {target} vCPUs wanted are connected: host pool(s) "
            f"{', '.join(ce_pools(ce))} have no other free reachable host"
        )
    if over and status in ("VALID", "INVALID"):
        status = "UPDATING"
        reason = (
            f"releasing {', '.join(sorted(over))}: with it the compute environment would have "
            f"more than its maxvCpus {high} vCPUs"
        )
    elif status == "VALID" and release:
        status, reason = "UPDATING", f"releasing {', '.join(sorted(release))}"
    return PoolPlan(take, tuple(release), status, reason, tuple(over))


def _overshoot(live: list[str], nodes: Mapping[str, Node], high: int) -> list[str]:
    """The held hosts that push the CE over maxvCpus (a host whose size was unknown until it
    connected): the last taken first, as few as bring it back under. They are released at
    once; until then the core places no more than maxvCpus there (``shared_capacity``)."""
    total = sum(_vcpus(nodes[h]) for h in live)
    over: list[str] = []
    for h in reversed(live):
        if total <= high:
            break
        over.append(h)
        total -= _vcpus(nodes[h])
    return over


def _next_free(
    ce: ComputeEnvironment,
    pools: PoolHosts,
    held: Mapping[str, str],
    unreachable: Mapping[str, str],
    room: int,
) -> str | None:
    for pool in ce_pools(ce):
        for host in pools.get(pool, ()):
            if host.name in held or host.name in unreachable:
                continue
            if host.vcpus is not None and host.vcpus > room:
                continue
            return host.name
    return None


def _status(
    ce: ComputeEnvironment,
    pools: PoolHosts,
    unreachable: Mapping[str, str],
    any_live: bool,
    connecting: bool,
) -> tuple[str, str]:
    if connecting:
        return ("UPDATING" if any_live else "CREATING"), "connecting hosts from the host pool(s)"
    if any_live or target_vcpus(ce) == 0:
        return "VALID", HEALTHY
    for pool in ce_pools(ce):
        hosts = pools.get(pool, ())
        if hosts and all(h.name in unreachable for h in hosts):
            why = "; ".join(f"{h.name}: {unreachable[h.name]}" for h in hosts)
            return "INVALID", f"host pool {pool} has no reachable host ({why})"
    big = [
        f"{h.name}: {h.vcpus} vCPUs"
        for pool in ce_pools(ce)
        for h in pools.get(pool, ())
        if h.vcpus is not None and h.vcpus > (ce.max_vcpus or 0)
    ]
    if big:
        return "INVALID", (
            f"host pool(s) {', '.join(ce_pools(ce))} have no free reachable host of "
            f"{ce.max_vcpus or 0} vCPUs or fewer (maxvCpus; {'; '.join(big)})"
        )
    return "INVALID", f"host pool(s) {', '.join(ce_pools(ce))} have no free reachable host"
