"""The composition root: state, store, loop, dispatcher, local nodes and the timers, wired.

``Head`` is what the API serves. Start-up: open the store, rebuild the state from it, create the
embedded defaults on a first start (compute environment ``local``, queue ``default``, job
definitions ``default`` and ``default-multinode``), start the loop, connect the local agents
(which reconciles what ran while the head was away), then start the timers: a Tick each second
(timeouts, retention), a heartbeat watchdog that reports silent nodes lost, the watch that
removes SSH hosts gone from the config once their jobs have ended (``retire.py``), and the one
that keeps the nodes of API-made LOCAL compute environments as their CEs say (``ce_nodes.py``:
started again from the stored CEs at each start); the SSH hosts retire before any node connects.

``metrics`` (``hpcbatch.metrics``) watches the loop: the loop tells it of each committed batch
and it publishes a snapshot of the gauges from the State there, on the loop; a scrape reads
only that snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import Awaitable, Callable

from hpcbatch.console.feed import ConsoleFeed
from hpcbatch.core import events as ev
from hpcbatch.core.ce_capacity import ce_status
from hpcbatch.core.model import ComputeEnvironment, JobSpec, MultiNodeSpec, NodeRange, NodeState
from hpcbatch.errors import StoreError
from hpcbatch.head.agents import NodeProfile
from hpcbatch.head.ce_hosts import CeHosts
from hpcbatch.head.ce_nodes import CeNodes, detect_machine
from hpcbatch.head.config import HeadConfig, local_node_names
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.launch_keys import LaunchKeys
from hpcbatch.head.loop import HeadLoop, now_ms
from hpcbatch.head.node_profiles import local_profiles, ssh_profile
from hpcbatch.head.persist import load_state
from hpcbatch.head.retire import Retirer
from hpcbatch.head.supervisor import NodeSpec, NodeSupervisor
from hpcbatch.metrics.exporter import HeadMetrics
from hpcbatch.store import JournalEntry, SqliteStore, WriteBatch
from hpcbatch.transport.base import AgentLink
from hpcbatch.transport.local import connect_local_agent
from hpcbatch.transport.ssh import SshHost, connect_ssh_agent

LOCAL_CE = "local"
DEFAULT_MULTINODE = "default-multinode"
_DEFAULT_CONTAINER = {
    "command": ["true"],
    "resourceRequirements": [
        {"type": "VCPU", "value": "1"},
        {"type": "MEMORY", "value": "512"},
    ],
}

log = logging.getLogger("hpcbatch.head")

# The collector's thresholds for a head (Python's are 700, 10, 10). After the freeze below, its
# rule for a full collection (objects not yet fully checked reach a quarter of those that have
# been) compares with the few objects made since start, so one ran every ~16th middle one and
# walked every job made since: 38 walks of ~150 ms (loop stalls) in a 100,000-job dispatch on
# 1,000 nodes, 30 % of the head's CPU. One in 100 middle collections, and a young generation of
# 10,000 (a batch's events, dicts and futures die in it): GC 7 s -> 1.2 s of that run, 4,465 ->
# 5,807 jobs/s (docs/benchmarks.md, "Issue 15, fourth step").
GC_THRESHOLDS = (10_000, 10, 100)


class Head:
    def __init__(self, config: HeadConfig, metrics: HeadMetrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or HeadMetrics()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = SqliteStore(config.data_dir / "state.db")
        self.state = load_state(self.store, config.stored_region, config.account)
        # What was loaded lives as long as the head: the collector's full passes need not walk
        # it again (with a million jobs loaded, each would stall the loop and the reads).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        self.head_id = self.store.get_meta("head_id") or str(uuid.uuid4())
        self.dispatcher = Dispatcher(LaunchKeys.in_dir(config.data_dir))
        self.console_feed = ConsoleFeed(self.metrics)  # the console's live pages, then metrics
        self.loop = HeadLoop(
            self.state,
            self.store,
            self.dispatcher,
            config.backfill_depth,
            observer=self.console_feed,
        )
        self.metrics.attach(self.state, self.dispatcher.sessions)
        self.nodes = NodeSupervisor(
            self.loop, self.dispatcher, config.heartbeat_timeout_s, config.agent_message_limit
        )
        self.retirer = Retirer(
            self.loop, self.nodes, self.store, self._ssh_connect, config.data_dir / "retiring"
        )
        self.machine = detect_machine()
        self.ce_nodes = CeNodes(
            self.loop, self.nodes, config.data_dir / "agents", self.head_id, self.machine
        )
        configured = set(local_node_names(config.local.nodes))
        configured |= {h.name for ce in config.compute_environments for h in ce.hosts}
        self.ce_hosts = CeHosts(
            self.loop,
            self.nodes,
            self.store,
            self._ssh_connect,
            config.data_dir / "ce_host_keys",
            config.host_pools,
            configured,
            config.host_idle_release_s,
            config.host_retry_s,
        )
        self._timers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.loop.start()
        await self._bootstrap()
        await self._ensure_configured_ces()
        retiring = await self.retirer.begin(self.config.compute_environments)
        summary = self._summary(sorted(self.retirer.retiring))
        local = self._local_specs()
        self.nodes.start(local + self._ssh_specs() + retiring)
        await self.nodes.wait_connected([spec.name for spec in local])
        await self.ce_nodes.reconcile()  # API-made LOCAL CEs' nodes, from the stored CEs
        await self.ce_hosts.begin()  # the SSH hosts API-made CEs held
        await self.ce_hosts.reconcile()
        running = asyncio.get_running_loop()
        self._timers = [
            running.create_task(self._tick()),
            running.create_task(self._watchdog()),
            running.create_task(self.retirer.watch()),
            running.create_task(self.ce_nodes.watch()),
            running.create_task(self.ce_hosts.watch()),
        ]
        self.metrics.refresh()
        log.info("ready: %s", summary)

    def _summary(self, retiring: list[str]) -> str:
        local = self.config.local.nodes
        parts = [f"{local} local node{'s' * (local != 1)}"]
        for ce in self.config.compute_environments:
            count = len(ce.hosts)
            parts.append(f"{count} {ce.kind} host{'s' * (count != 1)} in {ce.name} (connecting)")
        count = len(retiring)
        if count:
            names = ", ".join(retiring)
            parts.append(f"{count} host{'s' * (count != 1)} retiring (not in the config: {names})")
        elif self.config.compute_environments:  # a head with SSH hosts says so
            parts.append("no host retiring")
        return ", ".join(parts)

    async def capacity_changed(self) -> None:
        """After a compute environment write: start, resize or release its nodes and hosts now
        (the watches would, within ``WATCH_EVERY_S``)."""
        await self.ce_nodes.reconcile()
        await self.ce_hosts.reconcile()

    def ce_status(self, ce: ComputeEnvironment) -> tuple[str, str]:
        """DescribeComputeEnvironments' ``(status, statusReason)`` of ``ce`` now."""
        if ce.kind == "SLURM" and ce.status != "DELETING":
            for node in (n for n in self.state.nodes.values() if n.ce == ce.name):
                bridge = self.dispatcher.sessions.get(node.name)
                trouble = (bridge.slurm or {}).get("trouble") if bridge is not None else None
                if trouble:
                    return "INVALID", f"Slurm does not answer: {trouble}"
        decided = self.ce_hosts.status.get(ce.name)
        if decided is None or ce.status == "DELETING":
            return ce_status(self.state, ce)
        return decided

    async def history(self, subject: str) -> list[JournalEntry]:
        """A job's journal, read in a worker thread: the store's one connection may be held by
        a big write the loop has sent to a thread, and the event loop must not wait for it."""
        return await asyncio.to_thread(self.store.history, subject)

    async def stop(self) -> None:
        log.info("stopping; running jobs keep running and the next head re-adopts them")
        for task in self._timers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.ce_nodes.settle()
        await self.nodes.stop()
        await self.loop.stop()
        self.store.close()

    async def _bootstrap(self) -> None:
        if self.store.get_meta("bootstrapped"):
            await self._ensure_default_multinode()  # a head first started before it existed
            return
        now, cause = now_ms(), "bootstrap"
        if LOCAL_CE not in self.state.ces:
            await self.loop.call(
                ev.CreateComputeEnvironment(
                    cause=cause,
                    now=now,
                    name=LOCAL_CE,
                    ce_type="MANAGED",
                    kind="LOCAL",
                    echo={"computeResources": {"type": "LOCAL"}},
                )
            )
        if "default" not in self.state.queues:
            await self.loop.call(
                ev.CreateJobQueue(
                    cause=cause, now=now, name="default", priority=1, ce_order=((1, LOCAL_CE),)
                )
            )
        if "default" not in self.state.definitions:
            await self.loop.call(
                ev.RegisterJobDefinition(
                    cause=cause,
                    now=now,
                    name="default",
                    def_type="container",
                    spec=JobSpec(command=("true",)),
                    echo={"containerProperties": _DEFAULT_CONTAINER},
                )
            )
        await self._ensure_default_multinode()
        batch = WriteBatch()
        batch.set_meta("bootstrapped", "1")
        batch.set_meta("head_id", self.head_id)
        self.store.write(batch)

    async def _ensure_default_multinode(self) -> None:
        """``default-multinode``: what ``hpcbatch submit --nodes N -- CMD`` overrides (one
        open range, so a numNodes override stretches it to every node)."""
        if DEFAULT_MULTINODE in self.state.definitions:
            return
        spec = JobSpec(command=("true",))
        await self.loop.call(
            ev.RegisterJobDefinition(
                cause="bootstrap",
                now=now_ms(),
                name=DEFAULT_MULTINODE,
                def_type="multinode",
                spec=JobSpec(command=()),
                multinode=MultiNodeSpec(1, 0, (NodeRange(0, 0, spec, open_end=True),)),
                echo={
                    "nodeProperties": {
                        "numNodes": 1,
                        "mainNode": 0,
                        "nodeRangeProperties": [
                            {"targetNodes": "0:", "container": _DEFAULT_CONTAINER},
                        ],
                    }
                },
            )
        )

    def _local_specs(self) -> list[NodeSpec]:
        local = self.config.local

        def connect(
            name: str, profile: NodeProfile, gpus: tuple[int | str, ...] | None
        ) -> Callable[[], Awaitable[AgentLink]]:
            # Its launch server listens on the virtual node's own loopback address.
            options = ["--launch-address", profile.address] if profile.address else []
            return lambda: connect_local_agent(
                self.config.data_dir / "agents" / name,
                name,
                vcpus=local.vcpus or None,
                memory_mib=local.memory_mib or None,
                gpus=None if gpus is None else list(gpus),  # [] offers none
                head_id=self.head_id,
                agent_options=options,
            )

        return [
            NodeSpec(
                name,
                LOCAL_CE,
                connect(name, profile, local.node_gpus(i)),
                stop_agent_on_exit=True,
                profile=profile,
            )
            for i, (name, profile) in enumerate(
                zip(local_node_names(local.nodes), local_profiles(local, self.machine), strict=True)
            )
        ]

    def _ssh_connect(self, host: SshHost) -> Callable[[], Awaitable[AgentLink]]:
        return lambda: connect_ssh_agent(host, self.head_id)

    def _ssh_specs(self) -> list[NodeSpec]:
        return [
            NodeSpec(host.name, ce.name, self._ssh_connect(host), profile=ssh_profile(ce, host))
            for ce in self.config.compute_environments
            for host in ce.hosts
        ]

    async def _ensure_configured_ces(self) -> None:
        for ce in self.config.compute_environments:
            if ce.name not in self.state.ces:
                await self.loop.call(
                    ev.CreateComputeEnvironment(
                        cause="config",
                        now=now_ms(),
                        name=ce.name,
                        ce_type="MANAGED",
                        kind=ce.kind,
                        echo={"computeResources": {"type": ce.kind}},
                    )
                )

    async def _tick(self) -> None:
        last_purge = 0.0
        while True:
            await asyncio.sleep(1.0)
            now = now_ms()
            purge = now / 1000 - last_purge > self.config.purge_every_s
            retention = self.config.retention_ms if purge else None
            if purge:
                last_purge = now / 1000
                # the journal keeps as long as the jobs: without this it grew for ever
                await self._prune_journal(now - self.config.retention_ms)
            self.loop.post(ev.Tick(cause="tick", now=now, retention_ms=retention))

    async def _prune_journal(self, before_ms: int) -> None:
        """Drop journal lines older than ``before_ms`` (in chunks, each its own short
        transaction, in a thread: the loop goes on between them). A failure is logged: the
        next purge tries again."""
        try:
            pruned = await asyncio.to_thread(self.store.prune_journal, before_ms)
        except StoreError as error:
            log.warning("pruning the journal failed (retried at the next purge): %s", error)
            return
        if pruned:
            log.info("journal: %d lines older than the retention dropped", pruned)

    async def _watchdog(self) -> None:
        """Silent nodes go DOWN (their jobs held, their link dropped so it is made anew);
        nodes DOWN with jobs for longer than ``node_lost_timeout_s`` are lost."""
        silent_ms = int(self.config.heartbeat_timeout_s * 1000)
        lost_ms = int(self.config.node_lost_timeout_s * 1000)
        while True:
            await asyncio.sleep(min(1.0, self.config.heartbeat_timeout_s / 4))
            now = now_ms()
            for node in list(self.state.nodes.values()):
                if node.state is not NodeState.DOWN:
                    if now - (node.last_heartbeat or 0) > silent_ms:
                        self._down(node.name, now)
                elif node.attempts and now - node.state_changed_at > lost_ms:
                    reason = f"lost: DOWN for more than {self.config.node_lost_timeout_s:g} s"
                    self.loop.post(
                        ev.NodeLost(
                            cause=f"{node.name}#lost", now=now, node=node.name, reason=reason
                        )
                    )

    def _down(self, name: str, now: int) -> None:
        reason = f"no heartbeat for {self.config.heartbeat_timeout_s:g} s"
        self.loop.post(ev.NodeDown(cause=f"{name}#silent", now=now, node=name, reason=reason))
        session = self.dispatcher.sessions.get(name)
        if session is not None:  # a half-open connection: make the supervisor reconnect
            asyncio.get_running_loop().create_task(session.link.close())
