"""The virtual nodes of LOCAL compute environments made through the API: started, resized,
released, so that what runs matches ``core/ce_capacity.wanted_local_nodes``.

Vocabulary: a **CE node** is the one virtual node ``<ce>-1`` of an API-made LOCAL compute
environment: a detached local agent on the head's machine (the same agent the embedded ``local``
CE runs), its state directory ``<data_dir>/agents/<node>``, its size passed to the agent when it
starts (``--vcpus``/``--memory-mib``; no GPUs).

``reconcile`` compares what should run with what runs (the nodes it supervises and the CE nodes
the state holds) and acts on the difference:

- a wanted node not supervised: start supervising it (at head start this reconnects the agent
  the last head left running, and its hello reconciles its jobs);
- a node whose size changed or that is no longer wanted (maxvCpus 0, CE deleted): drained for
  good (``RetireNode``, core/retire.py) so its running jobs finish and nothing new lands there;
  once it holds no attempt its supervision ends, ``RemoveNode``, its agent is stopped, and a
  resized one starts again at its new size.

The API calls ``reconcile`` after each compute environment write (so a new CE's node starts at
once); ``watch`` calls it every ``WATCH_EVERY_S`` for the steps that wait on running jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from hpcbatch_agent.capacity import parse_meminfo
from hpcbatch_agent.slurmscript import Target

from hpcbatch.core import events as ev
from hpcbatch.core.ce_capacity import LocalNodeSize, Machine, is_api_local, wanted_local_nodes
from hpcbatch.core.model import Node
from hpcbatch.head.agents import NodeProfile
from hpcbatch.head.loop import HeadLoop
from hpcbatch.head.node_profiles import machine_profile
from hpcbatch.head.retire import call_node_event
from hpcbatch.head.slurm_target import slurm_agent_options, slurm_target
from hpcbatch.head.supervisor import NodeSpec, NodeSupervisor
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.local import connect_local_agent, stop_local_agent

log = logging.getLogger("hpcbatch.ce_nodes")

WATCH_EVERY_S = 0.5
# A node released (or a head stopped) before its agent connected waits this long from its
# start, so the agent being started (a detached daemon writes its pidfile when up) is there to
# be stopped.
START_GRACE_S = 10.0
AGENT_STOP_TIMEOUT_S = 10.0


def detect_machine() -> Machine:
    """The head's machine as its local agents see it: the CPUs this process may run on and
    MemTotal (agents/hpcbatch_agent/capacity.py measures the same way)."""
    return Machine(len(os.sched_getaffinity(0)), parse_meminfo(Path("/proc/meminfo").read_text()))


def _fits(node: Node, size: LocalNodeSize) -> bool:
    capacity = node.capacity
    memory_fits = size.memory_mib == 0 or capacity.memory_mib == size.memory_mib  # 0: Slurm's
    return capacity.cpu_milli == size.vcpus * 1000 and memory_fits


class CeNodes:
    def __init__(
        self,
        loop: HeadLoop,
        supervisor: NodeSupervisor,
        agents_dir: Path,
        head_id: str,
        machine: Machine,
    ) -> None:
        self.loop = loop
        self.supervisor = supervisor
        self.agents_dir = agents_dir
        self.head_id = head_id
        self.machine = machine
        self.running: dict[str, LocalNodeSize] = {}  # supervised, at the size it was started
        self.started_at: dict[str, float] = {}  # when its supervision began (monotonic)
        self._lock = asyncio.Lock()

    async def reconcile(self) -> None:
        async with self._lock:
            state = self.loop.state
            wanted = wanted_local_nodes(state, self.machine)
            ours = set(self.running) | {
                n.name
                for n in state.nodes.values()
                if n.ce in state.ces and is_api_local(state.ces[n.ce])
            }
            for name in sorted(ours | set(wanted)):
                try:
                    await self._settle(name, wanted.get(name))
                except Exception as error:  # one node's trouble must not stop the others
                    log.error("node %s: %s", name, error, exc_info=error)

    async def _settle(self, name: str, size: LocalNodeSize | None) -> None:
        node = self.loop.state.nodes.get(name)
        if size is not None and name not in self.running:
            self._start(size)
            return
        if size is not None and (node is None or _fits(node, size)):
            if node is not None and node.retiring is not None:
                await self._call(ev.KeepNode, name, f"{size.ce} wants it at this size again")
            return
        # resized or no longer wanted: drain it for good, release it once it is empty
        why = (
            f"resizing to {size.vcpus} vCPUs ({size.ce})"
            if size is not None
            else "its compute environment no longer wants it"
        )
        if node is not None and node.attempts:
            if name not in self.running:  # its jobs' ends must still be heard
                self._start(LocalNodeSize(name, node.ce, node.capacity.cpu_milli // 1000, 0))
            if node.retiring is None:
                await self._call(ev.RetireNode, name, why)
            return
        if self._starting(name):
            return  # its agent may be starting: stopping it now could miss it (next round)
        await self._release(name, why)
        if size is not None:
            self._start(size)

    def _start(self, size: LocalNodeSize) -> None:
        name = size.name
        self.running[name] = size
        self.started_at[name] = time.monotonic()

        options = self._slurm_options(size.ce) if size.kind == "SLURM" else []

        def connect() -> Awaitable[AgentLink]:
            return connect_local_agent(
                self.agents_dir / name,
                name,
                vcpus=size.vcpus,
                memory_mib=size.memory_mib or None,
                gpus=[],
                head_id=self.head_id,
                agent_options=options,
            )

        # A LOCAL node's jobs share the machine with the others'; a bridge's run in Slurm.
        profile = machine_profile(self.machine) if size.kind == "LOCAL" else NodeProfile()
        spec = NodeSpec(name, size.ce, connect, stop_agent_on_exit=True, profile=profile)
        self.supervisor.start([spec])
        log.info("node %s: started for %s (%d vCPUs)", name, size.ce, size.vcpus)

    def _slurm_options(self, ce_name: str) -> list[str]:
        ce = self.loop.state.ces.get(ce_name)
        return slurm_agent_options(slurm_target(ce.echo) if ce is not None else Target())

    def _starting(self, name: str) -> bool:
        """Its agent may be starting still: supervised lately and not connected yet."""
        if name in self.supervisor.dispatcher.sessions or name not in self.started_at:
            return False
        return time.monotonic() - self.started_at[name] < START_GRACE_S

    async def settle(self) -> None:
        """Wait (at most ``START_GRACE_S``) for the agents being started to connect: a head
        that stops must not leave one starting behind it, where nobody would stop it."""
        while any(self._starting(name) for name in self.running):
            await asyncio.sleep(0.05)

    async def _release(self, name: str, why: str) -> None:
        await self.supervisor.forget(name)
        self.running.pop(name, None)
        self.started_at.pop(name, None)
        if name in self.loop.state.nodes and not await self._call(ev.RemoveNode, name, why):
            return  # it took an attempt after all: the next round drains it again
        state_dir = self.agents_dir / name
        await asyncio.to_thread(stop_local_agent, state_dir, False, AGENT_STOP_TIMEOUT_S)
        await asyncio.to_thread(shutil.rmtree, state_dir, True)
        log.info("node %s: released (%s)", name, why)

    async def _call(self, kind: Callable[..., ev.Event], name: str, reason: str) -> bool:
        return await call_node_event(self.loop, kind, name, reason)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            await self.reconcile()
