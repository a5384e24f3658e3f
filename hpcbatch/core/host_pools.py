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
still connecting it waits (a host's vCPUs are known only once its agent says so, unless its
config sets ``vcpus``); below the target it takes the next free reachable host of the CE's
pools, in the order the pools and their hosts are listed, skipping a host whose configured
``vcpus`` would pass ``maxvCpus``; above it, it releases hosts idle for ``release_after_ms``,
last taken first, while what stays still covers the target. A held host that never connected
(DOWN, no capacity, no attempt) is released at once: the head marks it unreachable and the next
host is taken instead. The head acts on the plan (``head/ce_hosts.py``) and asks again; each call
is cheap (O(held + pool hosts + the RUNNABLE jobs counted up to ``maxvCpus``)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hpcbatch.core.model import ComputeEnvironment, Job, Node, NodeState
from hpcbatch.core.state import State

HEALTHY = "ComputeEnvironment Healthy"


@dataclass(frozen=True, slots=True)
class PoolHost:
    name: str
    pool: str
    vcpus: int | None = None  # the host's configured vcpus; None: known once it connects


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


def ce_pools(ce: ComputeEnvironment) -> tuple[str, ...]:
    """The host pools an SSH CE names (``computeResources.instanceTypes``)."""
    resources = ce.echo.get("computeResources") or {}
    return tuple(resources.get("instanceTypes") or ())


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


def waiting_vcpus(state: State, ce: ComputeEnvironment, cap: int) -> int:
    """vCPUs the RUNNABLE jobs of the ENABLED queues using ``ce`` ask for (a RUNNABLE job is
    one no connected node could take at the last pass), counted up to ``cap`` vCPUs: the cost
    is O(jobs counted), never O(queued)."""
    if ce.state != "ENABLED":
        return 0
    milli, cap_milli = 0, cap * 1000
    for queue in state.queues.values():
        if queue.state != "ENABLED" or ce.name not in queue.ce_order:
            continue
        for key in state.runnable.get(queue.name, ()):
            milli += _job_milli(state.jobs[key[3]])
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
    pools: Mapping[str, tuple[PoolHost, ...]],
    held: Mapping[str, str],
    nodes: Mapping[str, Node],
    unreachable: Mapping[str, str],
    demand: Demand = Demand(),
) -> PoolPlan:
    """``held``: host -> the CE holding it (every CE's, in the order taken); ``nodes``: the
    state's; ``unreachable``: host -> why it could not be connected lately; ``demand``: what
    waits for the CE and how long each held host has been idle."""
    mine = [h for h, owner in held.items() if owner == ce.name]
    failed = [h for h in mine if h in nodes and _never_connected(nodes[h])]
    pending = [h for h in mine if h not in nodes]
    live = [
        h
        for h in mine
        if h in nodes and nodes[h].state is not NodeState.DOWN and nodes[h].retiring is None
    ]
    connected = sum(_vcpus(nodes[h]) for h in live)
    used = sum(-(-nodes[h].allocated.cpu_milli // 1000) for h in live)
    high = ce.max_vcpus or 0
    target = max(target_vcpus(ce), min(high, used + demand.waiting_vcpus))
    take: tuple[str, ...] = ()
    release = list(failed)
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
    if status == "VALID" and connected < target:
        reason = (
            f"{connected} of the {target} vCPUs wanted are connected: host pool(s) "
            f"{', '.join(ce_pools(ce))} have no other free reachable host"
        )
    if status == "VALID" and release:
        status, reason = "UPDATING", f"releasing {', '.join(sorted(release))}"
    return PoolPlan(take, tuple(release), status, reason)


def _next_free(
    ce: ComputeEnvironment,
    pools: Mapping[str, tuple[PoolHost, ...]],
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
    pools: Mapping[str, tuple[PoolHost, ...]],
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
    return "INVALID", f"host pool(s) {', '.join(ce_pools(ce))} have no free reachable host"
