"""Jobs no host of a compute environment's host pools could ever hold: they draw no hosts, and
``hpcbatch describe`` says so, with the numbers.

Vocabulary:

- **pool host size** (``PoolHost``): what the head knows of a host pool's host before it holds
  it: its config's ``vcpus``/``memory_mib``/``gpus`` where set, else what it measured the last
  time the host connected (the head remembers it), else unknown (None).
- **cannot hold**: a host surely cannot hold a job when one of its known sizes is below the job's
  need; an unknown size could be anything, so it proves nothing.
- **hopeless** for a CE: every host of its pools surely cannot hold the job (a CE whose pools
  have no host at all is not judged: nothing to judge by). Such a job does not count in the
  CE's demand (``host_pools.waiting_vcpus``): taking hosts for it would only idle them.

The head tells the core its pools and their hosts' known sizes (``PoolHostsKnown``, kept in
``State.pool_hosts``, not persisted: said again at every start), so ``explain`` (DescribeJobs,
the metrics, the queues' ``jobStateTimeLimitActions``) judges by them; the head's pool decision
passes the same mapping to ``host_pools.waiting_vcpus``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hpcbatch.core.model import ComputeEnvironment, Job, Resources, format_vcpus

MISCONFIGURATION = "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"


@dataclass(frozen=True, slots=True)
class PoolHost:
    name: str
    pool: str
    vcpus: int | None = None  # configured, else measured when it last connected; None: unknown
    memory_mib: int | None = None
    gpus: int | None = None


PoolHosts = Mapping[str, tuple[PoolHost, ...]]


def ce_pools(ce: ComputeEnvironment) -> tuple[str, ...]:
    """The host pools an SSH CE names (``computeResources.instanceTypes``)."""
    resources = ce.echo.get("computeResources") or {}
    return tuple(resources.get("instanceTypes") or ())


def cannot_hold(host: PoolHost, need: Resources) -> bool:
    return (
        (host.vcpus is not None and need.cpu_milli > host.vcpus * 1000)
        or (host.memory_mib is not None and need.memory_mib > host.memory_mib)
        or (host.gpus is not None and need.gpus > host.gpus)
    )


def _hosts(ce: ComputeEnvironment, pools: PoolHosts) -> list[PoolHost]:
    return [h for pool in ce_pools(ce) for h in pools.get(pool, ())]


def job_shape(job: Job) -> tuple[tuple[Resources, int], ...]:
    """Each node range's need and how many nodes it has: ``((need, 1),)`` for a single job."""
    shape = job.multinode
    if shape is None:
        return ((job.spec.resources, 1),)
    return tuple((r.spec.resources, r.last - r.first + 1) for r in shape.ranges)


def hopeless(ce: ComputeEnvironment, pools: PoolHosts, needs: tuple[Resources, ...]) -> bool:
    """True when no host of ``ce``'s pools could ever hold one of ``needs``."""
    hosts = _hosts(ce, pools)
    return bool(hosts) and any(all(cannot_hold(h, need) for h in hosts) for need in needs)


def too_few(
    ce: ComputeEnvironment, pools: PoolHosts, shape: tuple[tuple[Resources, int], ...]
) -> tuple[int, int] | None:
    """``(hosts needed, hosts that could take them)`` when ``ce``'s pools have fewer hosts that
    could hold a multi-node job's nodes than it has nodes (each node a whole host of one CE);
    None when they have enough, or when the CE takes no hosts from pools."""
    hosts = _hosts(ce, pools)
    if not hosts:
        return None
    able_any: set[str] = set()
    for need, count in shape:
        able = [h.name for h in hosts if not cannot_hold(h, need)]
        if len(able) < count:
            return count, len(able)
        able_any.update(able)
    total = sum(count for _, count in shape)
    return (total, len(able_any)) if len(able_any) < total else None


INF = 1 << 62


class Judge:
    """``hopeless`` for the many jobs of one CE's queues, cheaply: nothing to judge when a host
    of its pools has no known size; a job within the smallest known size of every host is
    held, one past the largest size of a kind every host's is known of is not (three
    comparisons each); the rest are judged once per shape."""

    def __init__(self, ce: ComputeEnvironment, pools: PoolHosts) -> None:
        self.ce, self.pools = ce, pools
        hosts = _hosts(ce, pools)
        unknown = (None, None, None)
        self.idle = not hosts or any((h.vcpus, h.memory_mib, h.gpus) == unknown for h in hosts)
        self.floor = (
            min((INF if h.vcpus is None else h.vcpus * 1000) for h in hosts) if hosts else 0,
            min((INF if h.memory_mib is None else h.memory_mib) for h in hosts) if hosts else 0,
            min((INF if h.gpus is None else h.gpus) for h in hosts) if hosts else 0,
        )
        self.ceiling = (  # the largest size of each kind, where every host's is known
            _largest([h.vcpus for h in hosts], 1000),
            _largest([h.memory_mib for h in hosts], 1),
            _largest([h.gpus for h in hosts], 1),
        )
        self.verdicts: dict[tuple[int, int, int], bool] = {}

    def hopeless(self, job: Job) -> bool:
        if self.idle:
            return False
        if job.multinode is not None:
            ranges = job_shape(job)
            needs = tuple(need for need, _ in ranges)
            return hopeless(self.ce, self.pools, needs) or bool(
                too_few(self.ce, self.pools, ranges)
            )
        need = job.spec.resources
        cpu, memory, gpus = need.cpu_milli, need.memory_mib, need.gpus
        floor = self.floor
        if cpu <= floor[0] and memory <= floor[1] and gpus <= floor[2]:
            return False
        ceiling = self.ceiling
        if cpu > ceiling[0] or memory > ceiling[1] or gpus > ceiling[2]:
            return True
        shape = (cpu, memory, gpus)
        verdict = self.verdicts.get(shape)
        if verdict is None:
            verdict = self.verdicts[shape] = hopeless(self.ce, self.pools, (need,))
        return verdict


def _largest(sizes: list[int | None], unit: int) -> int:
    if not sizes or any(s is None for s in sizes):
        return INF
    return max(s for s in sizes if s is not None) * unit


def pool_fit_problem(
    ces: list[ComputeEnvironment], pools: PoolHosts, shape: tuple[tuple[Resources, int], ...]
) -> str | None:
    """The MISCONFIGURATION reason when every one of ``ces`` (a queue's ENABLED CEs, all
    taking hosts from pools) could never hold a job of ``shape`` (``job_shape``): the numbers
    of its largest known host, or of the hosts a multi-node job lacks; None when one of them
    could (or when one takes no hosts from pools)."""
    needs = tuple(need for need, _ in shape)
    if ces and all(ce_pools(ce) for ce in ces) and not any(hopeless(c, pools, needs) for c in ces):
        short = [too_few(ce, pools, shape) for ce in ces]
        if all(short):
            wanted = max(s[0] for s in short if s)
            most = max(s[1] for s in short if s)
            names = ", ".join(dict.fromkeys(p for ce in ces for p in ce_pools(ce)))
            return (
                f"{MISCONFIGURATION} - needs {wanted} hosts, one per node; host pool(s) {names} "
                f"of one compute environment have at most {most} that could hold its nodes"
            )
        return None
    if not ces or not all(ce_pools(ce) and hopeless(ce, pools, needs) for ce in ces):
        return None
    need = next(n for n in needs if all(hopeless(ce, pools, (n,)) for ce in ces))
    hosts = [h for ce in ces for h in _hosts(ce, pools)]
    names = ", ".join(dict.fromkeys(p for ce in ces for p in ce_pools(ce)))
    checks = (
        (need.cpu_milli, [h.vcpus * 1000 for h in hosts if h.vcpus is not None], "vCPUs"),
        (need.memory_mib, [h.memory_mib for h in hosts if h.memory_mib is not None], "MiB"),
        (need.gpus, [h.gpus for h in hosts if h.gpus is not None], "GPUs"),
    )
    for wanted, known, unit in checks:
        if known and wanted > max(known):
            fmt = format_vcpus if unit == "vCPUs" else str
            return (
                f"{MISCONFIGURATION} - needs {fmt(wanted)} {unit}; no host of host pool(s) "
                f"{names} can hold it (the largest has {fmt(max(known))} {unit})"
            )
    return (
        f"{MISCONFIGURATION} - needs {need.describe()} on one host; no host of host pool(s) "
        f"{names} has all of it"
    )
