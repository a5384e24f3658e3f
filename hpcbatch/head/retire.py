"""SSH hosts removed from the head's config retire: drained, supervised to the end, then gone.

Vocabulary: a **retiring host** is one the head remembers (``host_memory``) that its config no
longer lists — Ansible removed it from the inventory and restarted the head. The head still
reaches it with the remembered spec; the core drains it for good (``core/retire.py``).

The order, at start (``Head.start``, before any node connects, so a hello finds the node
already retiring):

1. remember the configured hosts and those still retiring (one meta write);
2. ``KeepNode`` for each retiring node the config lists again (ONLINE again), ``RetireNode``
   for each retiring host: DRAINING with the reason ``removed from the head's config``;
3. supervise the retiring hosts that hold attempts like any other (heartbeats, results, the
   DOWN/LOST rules of an unreachable host), so their running jobs end exactly as before.

Then, as each retiring node holds no attempt (at once for an empty one): stop supervising it
(its link is closed and never made again), ``RemoveNode`` (journaled; the core refuses it while
the node holds an attempt), ask its agent to stop over a short SSH connection (``<pyz> stop``,
its processes left alone: the head holds nothing there), and forget the host. A head
restarted midway finds the rest still remembered and goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from hpcbatch.core import events as ev
from hpcbatch.errors import ClientError
from hpcbatch.head import host_memory
from hpcbatch.head.host_memory import RememberedHost
from hpcbatch.head.hosts import CeConfig
from hpcbatch.head.loop import HeadLoop, now_ms
from hpcbatch.head.supervisor import NodeSpec, NodeSupervisor
from hpcbatch.store import Store
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.ssh import SshHost

log = logging.getLogger("hpcbatch.retire")

RETIRE_REASON = "removed from the head's config"
KEEP_REASON = "listed in the head's config again"
REMOVE_REASON = "removed from the head's config, and empty"
WATCH_EVERY_S = 0.5  # how soon a retiring node that has just emptied goes
AGENT_STOP_TIMEOUT_S = 60.0

Connect = Callable[[SshHost], Callable[[], Awaitable[AgentLink]]]


class Retirer:
    def __init__(
        self,
        loop: HeadLoop,
        supervisor: NodeSupervisor,
        store: Store,
        connect: Connect,
        keys_dir: Path,
    ) -> None:
        """``keys_dir``: where a retiring host's remembered keys are written for its
        connections (``host_memory.reachable``)."""
        self.keys_dir = keys_dir
        self.loop = loop
        self.supervisor = supervisor
        self.store = store
        self.connect = connect
        self.retiring: dict[str, RememberedHost] = {}
        self._remembered: dict[str, RememberedHost] = {}

    async def begin(self, ces: tuple[CeConfig, ...]) -> list[NodeSpec]:
        """Steps 1 and 2 above; the specs of the retiring hosts still holding attempts, for the
        supervisor (the others go as soon as ``watch`` runs)."""
        configured = host_memory.configured(ces)
        before = await asyncio.to_thread(host_memory.load, self.store)
        self.retiring = {name: host for name, host in before.items() if name not in configured}
        self._remembered = {**configured, **self.retiring}
        await asyncio.to_thread(host_memory.save, self.store, dict(self._remembered))
        nodes = self.loop.state.nodes
        for name in sorted(configured):
            node = nodes.get(name)
            if node is not None and node.retiring is not None:
                await self.loop.call(
                    ev.KeepNode(cause="config", now=now_ms(), node=name, reason=KEEP_REASON)
                )
        for name in sorted(self.retiring):
            await self.loop.call(
                ev.RetireNode(cause="config", now=now_ms(), node=name, reason=RETIRE_REASON)
            )
        return [
            self.spec(self.retiring[name]) for name in sorted(self.retiring) if self._busy(name)
        ]

    def spec(self, remembered: RememberedHost) -> NodeSpec:
        host = host_memory.reachable(remembered, self.keys_dir)
        return NodeSpec(host.name, remembered.ce, self.connect(host), profile=remembered.profile)

    def _busy(self, name: str) -> bool:
        node = self.loop.state.nodes.get(name)
        return node is not None and bool(node.attempts)

    async def watch(self) -> None:
        """Remove each retiring node once it holds no attempt; ends when none is left."""
        while self.retiring:
            done = [name for name in sorted(self.retiring) if not self._busy(name)]
            outcomes = await asyncio.gather(
                *(self._finish(name) for name in done), return_exceptions=True
            )
            for name, outcome in zip(done, outcomes, strict=True):
                if isinstance(outcome, Exception):  # the next head's start retries it
                    log.error("node %s: retiring failed: %s", name, outcome, exc_info=outcome)
            await asyncio.sleep(WATCH_EVERY_S)

    async def _finish(self, name: str) -> None:
        remembered = self.retiring.pop(name)
        await self.supervisor.forget(name)
        remove = ev.RemoveNode(
            cause=f"{name}#retire", now=now_ms(), node=name, reason=REMOVE_REASON
        )
        try:
            await self.loop.call(remove)
        except ClientError as error:  # it holds an attempt after all: keep supervising it
            log.warning("node %s: not removed yet: %s", name, error)
            self.retiring[name] = remembered
            self.supervisor.start([self.spec(remembered)])
            return
        host = host_memory.reachable(remembered, self.keys_dir)
        stopped = await asyncio.to_thread(stop_agent, host)
        log.info(
            "node %s: removed from %s (%s); its agent %s",
            name,
            remembered.ce,
            RETIRE_REASON,
            stopped,
        )
        self._remembered.pop(name, None)
        await asyncio.to_thread(host_memory.save, self.store, dict(self._remembered))


async def call_node_event(
    loop: HeadLoop, kind: Callable[..., ev.Event], name: str, reason: str
) -> bool:
    """Step a RetireNode/KeepNode/RemoveNode for ``name`` as the capacity managers
    (``ce_hosts``, ``ce_nodes``) do: False, logged, where the core refuses it (e.g. a
    RemoveNode raced by a placement: their next round tries again)."""
    event = kind(cause=f"{name}#capacity", now=now_ms(), node=name, reason=reason)
    try:
        await loop.call(event)
    except ClientError as error:
        log.warning("node %s: %s", name, error)
        return False
    return True


def stop_agent(host: SshHost) -> str:
    """``<pyz> stop`` on ``host`` (jobs left alone); what became of it, in words."""
    from hpcbatch.transport import fanout  # fabric: imported only when a host retires

    command = fanout.stop_agent_command(host, kill_jobs=False)
    (outcome,) = fanout.run_each([host], [command], AGENT_STOP_TIMEOUT_S)
    if outcome.ok:
        return "stopped"
    why = outcome.error or outcome.stderr.strip() or f"exit {outcome.exit_code}"
    return f"could not be stopped: {why}"
