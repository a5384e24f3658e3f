"""SSH hosts that compute environments made through the API hold: taken from the config's host
pools (MANAGED SSH CEs, ``core/host_pools.py`` decides) or added by an admin (UNMANAGED CEs,
``hpcbatch nodes add``); supervised, remembered across restarts, released after their jobs.

Vocabulary: a **held host** (``Held``) is one such host: its ``RememberedHost`` (how to reach it,
its host keys, its CE) and the pool it came from (None: added by an admin). The held hosts live
in the store's meta under ``ce_hosts`` (``host_memory`` documents), written whenever one is
taken or let go, so a restarted head supervises the same hosts again. They are apart from the
config's hosts (``ssh_hosts``): ``retire.py`` never retires them.

**Releasing** a host (fewer vCPUs wanted, its CE deleted, ``hpcbatch nodes remove``): the core
drains it for good (``RetireNode``), its running jobs finish, then its supervision ends,
``RemoveNode``, its agent is stopped over a short SSH connection (``retire.stop_agent``), and it
is forgotten. A pool host that never connected is let go at once and remembered as
**unreachable** (with why) for ``retry_after_s`` (config ``host_retry_s``), so the CE takes
the next host and its
status can say why none connects.

**Sizes**: what each pool host measured when it last connected (vCPUs, memory, GPUs) is kept
in the store's meta under ``pool_host_sizes``; a size the config sets wins. With it the plan
skips a host that would pass its CE's maxvCpus before connecting it, and a job no pool host
could ever hold draws no host (``core/pool_fit.py``); the sizes are told to the core
(``PoolHostsKnown``) at start and whenever one changes, so a job's statusReason says so too.

**Status**: each CE's last reported ``(status, reason)`` is kept with the CE's settings it was
decided for; retrying a host after an INVALID keeps it INVALID (``plan_pool``'s ``previous``)
until a host connects or the CE is updated.

``reconcile`` runs after each compute environment write and every ``WATCH_EVERY_S``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from hpcbatch.core import events as ev
from hpcbatch.core.host_pools import Demand, plan_pool, uses_pools, waiting_vcpus
from hpcbatch.core.model import ComputeEnvironment, Resources
from hpcbatch.core.pool_fit import PoolHost, ce_pools
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError
from hpcbatch.head import host_memory
from hpcbatch.head.host_memory import RememberedHost
from hpcbatch.head.hosts import CeConfig
from hpcbatch.head.loop import HeadLoop, now_ms
from hpcbatch.head.node_profiles import ssh_profile
from hpcbatch.head.retire import call_node_event, stop_agent
from hpcbatch.head.supervisor import NodeSpec, NodeSupervisor
from hpcbatch.store import Store, WriteBatch
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.ssh import SshHost

log = logging.getLogger("hpcbatch.ce_hosts")

META_KEY = "ce_hosts"
SIZES_KEY = "pool_host_sizes"
WATCH_EVERY_S = 0.5
# A host released before its agent connected (and before it was found unreachable) waits this
# long from when it was taken: its agent may be being installed and started, and a stop sent
# now could come first and miss it.
START_GRACE_S = 30.0

Connect = Callable[[SshHost], Callable[[], Awaitable[AgentLink]]]


@dataclass(frozen=True)
class Held:
    remembered: RememberedHost
    pool: str | None  # None: added by an admin to an UNMANAGED CE

    @property
    def ce(self) -> str:
        return self.remembered.ce


class CeHosts:
    def __init__(
        self,
        loop: HeadLoop,
        supervisor: NodeSupervisor,
        store: Store,
        connect: Connect,
        keys_dir: Path,
        pools: tuple[CeConfig, ...],
        configured: set[str],
        release_after_s: float = 60.0,
        retry_after_s: float = 30.0,
    ) -> None:
        """``configured``: the node names the config gives (local nodes, SSH CE hosts): an
        admin may not add a host by one of them; ``release_after_s``: how long a pool host
        above its CE's floor stays idle before it is released."""
        self.loop = loop
        self.supervisor = supervisor
        self.store = store
        self.connect = connect
        self.keys_dir = keys_dir
        self.pools = {p.name: p for p in pools}
        self.measured: dict[str, Resources] = {}  # pool host -> its size when it last connected
        self.pool_hosts = self._sized()
        self.configured = configured | {h.name for p in pools for h in p.hosts}
        self.held: dict[str, Held] = {}
        self.unreachable: dict[str, tuple[str, float]] = {}  # host -> (why, since: monotonic)
        self.status: dict[str, tuple[str, str]] = {}  # CE -> (status, reason), last decided
        self.status_basis: dict[str, object] = {}  # CE -> the settings its status was for
        self.releasing: set[str] = set()  # held hosts on their way out
        self.idle_since: dict[str, float] = {}  # held host -> since when it holds no attempt
        self.taken_at: dict[str, float] = {}  # held host -> when its supervision began
        self.release_after_s = release_after_s
        self.retry_after_s = retry_after_s  # an unreachable pool host is tried again after it
        self._lock = asyncio.Lock()

    @property
    def pool_names(self) -> tuple[str, ...]:
        return tuple(self.pools)

    # --- start and persistence ------------------------------------------------------------

    def _sized(self) -> dict[str, tuple[PoolHost, ...]]:
        """Each pool's hosts with their sizes: the config's where set, else the measured."""
        sized = {}
        for pool in self.pools.values():
            hosts = []
            for h in pool.hosts:
                seen = self.measured.get(h.name)
                gpus = None if h.gpus is None else len(h.gpus)
                if seen is not None:
                    vcpus = h.vcpus if h.vcpus is not None else seen.cpu_milli // 1000
                    memory = h.memory_mib if h.memory_mib is not None else seen.memory_mib
                    gpus = gpus if gpus is not None else seen.gpus
                    hosts.append(PoolHost(h.name, pool.name, vcpus, memory, gpus))
                else:
                    hosts.append(PoolHost(h.name, pool.name, h.vcpus, h.memory_mib, gpus))
            sized[pool.name] = tuple(hosts)
        return sized

    async def _measure(self) -> None:
        """Remember the size of each held pool host whose agent has said it (persisted)."""
        changed = False
        for name, held in self.held.items():
            node = self.loop.state.nodes.get(name)
            if held.pool is None or node is None or node.capacity.cpu_milli == 0:
                continue
            if self.measured.get(name) != node.capacity:
                self.measured[name] = node.capacity
                changed = True
        if changed:
            await self._tell_sizes()
            doc = {h: [r.cpu_milli, r.memory_mib, r.gpus] for h, r in sorted(self.measured.items())}
            batch = WriteBatch()
            batch.set_meta(SIZES_KEY, json.dumps(doc, separators=(",", ":")))
            await asyncio.to_thread(self.store.write, batch)

    async def _tell_sizes(self) -> None:
        """Size the pools' hosts again and tell the core (explain, time limits judge by it)."""
        self.pool_hosts = self._sized()
        pools = tuple(self.pool_hosts.items())
        await self.loop.call(ev.PoolHostsKnown(cause="host-pools", now=now_ms(), pools=pools))

    async def begin(self) -> None:
        """Supervise the hosts the last head held; recall the pool hosts' measured sizes."""
        sizes = await asyncio.to_thread(self.store.get_meta, SIZES_KEY)
        self.measured = {h: Resources(*v) for h, v in json.loads(sizes or "{}").items()}
        await self._tell_sizes()
        text = await asyncio.to_thread(self.store.get_meta, META_KEY)
        for name, doc in json.loads(text or "{}").items():
            self.held[name] = Held(host_memory.from_doc(doc["host"]), doc.get("pool"))
            self._supervise(self.held[name])

    async def _save(self) -> None:
        doc = {
            name: {"host": host_memory.to_doc(held.remembered), "pool": held.pool}
            for name, held in sorted(self.held.items())
        }
        batch = WriteBatch()
        batch.set_meta(META_KEY, json.dumps(doc, separators=(",", ":")))
        await asyncio.to_thread(self.store.write, batch)

    def _supervise(self, held: Held) -> None:
        remembered = held.remembered
        self.taken_at[remembered.host.name] = time.monotonic()
        host = host_memory.reachable(remembered, self.keys_dir)
        spec = NodeSpec(host.name, remembered.ce, self.connect(host), profile=remembered.profile)
        self.supervisor.start([spec])

    # --- admin: UNMANAGED compute environments ----------------------------------------------

    async def add(self, ce_name: str, hosts: list[SshHost]) -> None:
        """Hold ``hosts`` in the UNMANAGED CE ``ce_name``; all or none (checked first)."""
        async with self._lock:
            ce = self.loop.state.ces.get(ce_name)
            if ce is None:
                raise NotFoundError(f"computeEnvironment: no compute environment {ce_name!r}")
            if ce.ce_type != "UNMANAGED":
                raise ValidationError(
                    "computeEnvironment",
                    f"{ce_name} is {ce.ce_type}; hosts are added to UNMANAGED compute "
                    "environments (a MANAGED SSH one takes its hosts from host pools)",
                )
            self._check_new(hosts)
            for host in hosts:
                keys = host_memory.known_keys(host)
                remembered = RememberedHost(host, ce_name, ssh_profile(_pool_like(), host), keys)
                self.held[host.name] = Held(remembered, None)
            await self._save()
            for host in hosts:
                self._supervise(self.held[host.name])
                log.info("node %s: added to %s by an admin", host.name, ce_name)

    def _check_new(self, hosts: list[SshHost]) -> None:
        names = set(self.loop.state.nodes) | set(self.held) | self.configured
        endpoints = {
            (h.remembered.host.address, h.remembered.host.port) for h in self.held.values()
        }
        endpoints |= {(h.address, h.port) for p in self.pools.values() for h in p.hosts}
        for i, host in enumerate(hosts):
            if host.name in names:
                raise ConflictError(f"hosts[{i}].name: {host.name!r} is already a node's name")
            if (host.address, host.port) in endpoints:
                raise ConflictError(
                    f"hosts[{i}].address: {host.address}:{host.port} is already held or in a "
                    "host pool"
                )
            names.add(host.name)
            endpoints.add((host.address, host.port))

    async def remove(self, name: str) -> None:
        """Let an admin-added host go (after its jobs): it drains now, leaves once empty."""
        held = self.held.get(name)
        if held is None or held.pool is not None:
            raise NotFoundError(
                f"node: {name!r} was not added with `hpcbatch nodes add` (a pool host leaves "
                "when its compute environment needs fewer vCPUs; a config host when the "
                "config drops it)"
            )
        self.releasing.add(name)
        await self.reconcile()

    # --- the decisions ----------------------------------------------------------------------

    async def reconcile(self) -> None:
        async with self._lock:
            state = self.loop.state
            now = time.monotonic()
            self.unreachable = {
                h: v for h, v in self.unreachable.items() if now - v[1] < self.retry_after_s
            }
            for name, held in self.held.items():
                ce, node = state.ces.get(held.ce), state.nodes.get(name)
                # a node retiring here was on its way out when the last head stopped
                if ce is None or ce.status == "DELETING" or (node and node.retiring):
                    self.releasing.add(name)
            owners = {name: held.ce for name, held in self.held.items()}
            why = {h: v[0] for h, v in self.unreachable.items()}
            idle_ms = self._idle_ms(now)
            await self._measure()
            for ce in sorted(state.ces.values(), key=lambda c: c.seq):
                if not uses_pools(ce) or ce.status == "DELETING":
                    self.status.pop(ce.name, None)
                    continue
                waiting = waiting_vcpus(state, ce, ce.max_vcpus or 0, self.pool_hosts)
                demand = Demand(waiting, idle_ms, int(self.release_after_s * 1000))
                previous = self._previous(ce)
                plan = plan_pool(ce, self.pool_hosts, owners, state.nodes, why, demand, previous)
                self.status[ce.name] = (plan.status, plan.reason)
                for name in plan.take:
                    await self._take(name, ce.name)
                    owners[name] = ce.name
                for name in plan.too_big:
                    vcpus = state.nodes[name].capacity.cpu_milli // 1000
                    log.warning(
                        "node %s: its %d vCPUs take %s past its maxvCpus %s: released (its "
                        "size is remembered; `vcpus` in its config says it before it connects)",
                        name,
                        vcpus,
                        ce.name,
                        ce.max_vcpus,
                    )
                for name in plan.release:
                    node = state.nodes.get(name)
                    if node is not None and node.capacity.cpu_milli == 0:
                        self.unreachable[name] = (node.state_reason, now)
                        log.warning(
                            "node %s: did not connect (%s): let go, tried again in %g s",
                            name,
                            node.state_reason,
                            self.retry_after_s,
                        )
                    self.releasing.add(name)
            for name in sorted(self.releasing):
                try:
                    await self._release(name)
                except Exception as error:  # one host's trouble must not stop the others
                    log.error("node %s: release failed: %s", name, error, exc_info=error)

    def _previous(self, ce: ComputeEnvironment) -> tuple[str, str] | None:
        """The status ``ce`` reported last, unless it was updated since (None)."""
        basis = (ce.state, ce.min_vcpus, ce.max_vcpus, ce.desired_vcpus, ce_pools(ce))
        if self.status_basis.get(ce.name) != basis:
            self.status_basis[ce.name] = basis
            return None
        return self.status.get(ce.name)

    def _idle_ms(self, now: float) -> dict[str, int]:
        """How long each held host has held no attempt (ms), as this head has watched it."""
        nodes = self.loop.state.nodes
        for name in self.held:
            node = nodes.get(name)
            if node is None or node.attempts:
                self.idle_since.pop(name, None)
            else:
                self.idle_since.setdefault(name, now)
        for name in set(self.idle_since) - set(self.held):
            del self.idle_since[name]
        return {name: int((now - since) * 1000) for name, since in self.idle_since.items()}

    async def _take(self, name: str, ce_name: str) -> None:
        pool = next(p for p in self.pools.values() if any(h.name == name for h in p.hosts))
        host = next(h for h in pool.hosts if h.name == name)
        keys = host_memory.known_keys(host)
        held = Held(RememberedHost(host, ce_name, ssh_profile(pool, host), keys), pool.name)
        self.held[name] = held
        await self._save()
        self._supervise(held)
        log.info("node %s: taken from host pool %s for %s", name, pool.name, ce_name)

    async def _release(self, name: str) -> None:
        held = self.held.get(name)
        if held is None:
            self.releasing.discard(name)
            return
        node = self.loop.state.nodes.get(name)
        reason = f"released from {held.ce}"
        if node is None and self._starting(name):
            return  # its agent may be starting: a stop now could miss it (next round)
        if node is not None and node.attempts:
            if node.retiring is None:
                await self._call(ev.RetireNode, name, reason)
            return
        await self.supervisor.forget(name)
        if node is not None and not await self._call(ev.RemoveNode, name, reason):
            self._supervise(held)  # it took an attempt after all
            return
        never_connected = node is not None and node.capacity.cpu_milli == 0
        if not never_connected:
            host = host_memory.reachable(held.remembered, self.keys_dir)
            stopped = await asyncio.to_thread(stop_agent, host)
            log.info("node %s: %s; its agent %s", name, reason, stopped)
        del self.held[name]
        self.taken_at.pop(name, None)
        self.releasing.discard(name)
        await self._save()

    def _starting(self, name: str) -> bool:
        """Taken lately and neither connected nor reported unreachable yet."""
        if name in self.supervisor.dispatcher.sessions or name not in self.taken_at:
            return False
        return time.monotonic() - self.taken_at[name] < START_GRACE_S

    async def _call(self, kind: Callable[..., ev.Event], name: str, reason: str) -> bool:
        return await call_node_event(self.loop, kind, name, reason)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            await self.reconcile()


def _pool_like() -> CeConfig:
    """An admin-added host's profile source: no fabric settings (tcp), its own labels."""
    return CeConfig("", "SSH", ())
