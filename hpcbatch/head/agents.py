"""One session per connected agent: its messages become events, commands become its messages.

Vocabulary: a **session** wraps one ``AgentLink`` (a local Unix socket now, an SSH channel
later — the protocol is the same) for one node. It turns the agent's hello into ``NodeJoined``
(plus the attempts it knows, for reconciliation), ``updates`` into ``AttemptStarted``,
``AttemptQueued`` (waiting in Slurm, a SLURM bridge says why) and
``AttemptEnded``, heartbeats into ``NodeHeartbeat`` (keeping their ``cpu_s``, the CPU seconds
the agent's jobs used, as ``cpu_seconds``); and it acknowledges final results only after
the loop has made them durable, so an agent never forgets a result the head could still lose.

Each session counts the agent's messages against a budget (``flood.py``): an agent that sends
more than its config allows is **hung up on** — the session stops reading at the message that
spent the budget (the backlog behind it never reaches the loop) and returns with ``hung_up``
set to the reason, which the supervisor logs and reports as the node's DOWN reason. What an
agent says that the head only logs (its ``error`` reports, the reports it sends on attempts
that are not its own) is logged at most ``LOGGED_COMPLAINTS`` times a connection, so that even
within its budget an agent cannot fill the head's log (one ``updates`` message may carry a
thousand ignored reports).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from hpcbatch import protocol
from hpcbatch.core import events as ev
from hpcbatch.core.attempts import foreign_report
from hpcbatch.core.commands import KillAttempt, LaunchAttempt
from hpcbatch.core.model import Gpu, Resources
from hpcbatch.errors import TransportError, ValidationError
from hpcbatch.head.flood import DEFAULT_LIMIT, FloodLimit, MessageBudget
from hpcbatch.head.launch_keys import LaunchKeys
from hpcbatch.head.loop import HeadLoop, now_ms
from hpcbatch.transport.base import AgentLink

log = logging.getLogger("hpcbatch.agents")

LOG_TIMEOUT_S = 10.0
MAX_LOG_OFFSET = protocol.MAX_LOG_OFFSET  # the agent's bound, one definition
MAX_LOG_CHUNK = 16 * 1024 * 1024
LOCAL_ADDRESS = "127.0.0.1"  # where a LOCAL agent is reached when its profile names none
MAX_PORT = 65535
LOGGED_COMPLAINTS = 100  # an agent's error reports and ignored reports logged, per connection


@dataclass(frozen=True)
class NodeProfile:
    """What the head's config says of a node, reported with its hello: the address other
    nodes reach it at (a LOCAL virtual node's own loopback address; None: the link's), its
    placement group, its CE's fabric variables, and the machine it shares with other nodes
    (a LOCAL node: the head's, ``machine_cpus``/``machine_memory_mib`` as measured; None: none,
    core/shared_capacity.py)."""

    address: str | None = None
    placement_group: str | None = None
    fabric_environment: tuple[tuple[str, str], ...] = ()
    machine: str | None = None
    machine_cpus: int = 0
    machine_memory_mib: int = 0

    @property
    def machine_capacity(self) -> Resources | None:
        if self.machine is None:
            return None
        return Resources(self.machine_cpus * 1000, self.machine_memory_mib, 0)


def launch_port_of(node: str, info: dict[str, Any]) -> int | None:
    """The hello's ``node.launch_port``: a TCP port, or None (absent, null, or not a port,
    which is logged: the node then simply takes no launch requests)."""
    port = info.get("launch_port")
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= MAX_PORT:
        log.warning("agent %s: ignored its launch_port %r: not a TCP port", node, port)
        return None
    return port


def log_stream_name(node: str, attempt_id: str) -> str:
    return f"hpcbatch/{node}/{attempt_id}"


def update_event(node: str, cause: str, update: dict[str, Any]) -> ev.Event:
    aid = update["attempt_id"]
    now = now_ms()
    if update["state"] == protocol.RUNNING:
        return ev.AttemptStarted(
            cause=cause,
            now=now,
            node=node,
            attempt_id=aid,
            started_at=update["started_at_ms"] or now,
            pid=update["pid"],
            log_stream=log_stream_name(node, aid),
        )
    if update["state"] == protocol.QUEUED:
        return ev.AttemptQueued(
            cause=cause, now=now, node=node, attempt_id=aid, reason=update["reason"] or "queued"
        )
    reason = update["reason"]
    if reason is None and update["signal"] is not None:
        reason = f"killed by signal {update['signal']}"
    return ev.AttemptEnded(
        cause=cause,
        now=now,
        node=node,
        attempt_id=aid,
        stopped_at=update["stopped_at_ms"] or now,
        exit_code=update["exit_code"],
        reason=reason,
        started_at=update["started_at_ms"],
        pid=update["pid"],
        log_stream=log_stream_name(node, aid) if update["started_at_ms"] is not None else None,
    )


def _enforcement(cgroups: str, enforced: list[str] | None = None) -> str:
    """How a node enforces its jobs' limits, as ``hpcbatch nodes`` shows it. ``cgroups`` is
    the hello's ``node.cgroups`` (the hierarchy kind enforcing them); ``enforced`` its
    ``node.enforced`` (which of memory, cpu, pids), absent from older agents."""
    if cgroups == "none":
        return "none: no writable cgroups on this host (or the agent runs with --no-cgroups)"
    if not enforced:
        return f"cgroups {cgroups}"
    return f"cgroups {cgroups} ({', '.join(enforced)})"


def gpus_of(items: list[protocol.GpuInfo]) -> tuple[Gpu, ...]:
    """The agent's GPU list (hello, ``gpus``) as the core's: each named by protocol.gpu_id."""
    return tuple(
        Gpu(protocol.gpu_id(g), g["index"], g.get("name"), g.get("memory_mib")) for g in items
    )


class AgentSession:
    def __init__(
        self,
        node: str,
        ce: str,
        link: AgentLink,
        loop: HeadLoop,
        profile: NodeProfile | None = None,
        limit: FloodLimit = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.profile = profile or NodeProfile()
        self.ce = ce
        self.link = link
        self.loop = loop
        self._causes = itertools.count(1)
        self._requests = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._to_ack: list[str] = []
        self.log_timeout_s = LOG_TIMEOUT_S
        self.closed = asyncio.Event()
        # CPU seconds the agent's jobs used since it started, from its latest heartbeat
        # (None until one carries it: an older agent never does). /metrics exports it.
        self.cpu_seconds: float | None = None
        # A SLURM bridge's view of its partitions: sinfo's nodes, and what Slurm said while it
        # did not answer (``trouble``); None from every other agent. Shown, never scheduled on.
        self.slurm: dict[str, Any] | None = None
        self.limit, self._clock = limit, clock
        self.hung_up: str | None = None  # why the session stopped reading: a spent budget
        self._complaints = 0

    @property
    def agent_version(self) -> str:
        """The agent's build id as its hello reports it (upgrade.py), else its version."""
        hello = self.link.hello
        return str(hello.get("agent_build") or hello.get("agent_version") or "?")

    def _cause(self) -> str:
        return f"{self.node}#{next(self._causes)}"

    def joined_event(self, updates: list[dict[str, Any]]) -> ev.NodeJoined:
        """The hello as an event; ``updates`` are its attempts, already ``_admitted``."""
        node = self.link.hello["node"]
        known = tuple(u["attempt_id"] for u in updates)
        # queued in another scheduler counts as running: a kill must reach it too
        running = tuple(u["attempt_id"] for u in updates if not protocol.is_final(u))
        return ev.NodeJoined(
            cause=self._cause(),
            now=now_ms(),
            node=self.node,
            ce=self.ce,
            capacity=Resources(node["vcpus"] * 1000, node["memory_mib"], len(node["gpus"])),
            gpus=gpus_of(node["gpus"]),
            gpus_reason=node.get("gpus_reason"),
            gpu_isolation=node.get("gpu_isolation", "env"),
            gpu_isolation_reason=node.get("gpu_isolation_reason"),
            enforcement=_enforcement(node["cgroups"], node.get("enforced")),
            # A LOCAL virtual node has its own loopback address; an SSH link knows its host's.
            address=self.profile.address or getattr(self.link, "address", None) or LOCAL_ADDRESS,
            launch_port=launch_port_of(self.node, node),
            placement_group=self.profile.placement_group,
            fabric_environment=self.profile.fabric_environment,
            machine=self.profile.machine,
            machine_capacity=self.profile.machine_capacity,
            known_attempts=known,
            running_attempts=running,
        )

    async def run(self) -> None:
        """Report the hello, then relay messages until the link closes or the agent has sent
        more than its budget allows (``hung_up`` then says so; the caller closes the link)."""
        known = self._admitted(self.link.hello.get("attempts", []))
        self.loop.post(self.joined_event(known))
        self._post_updates(known)
        budget = MessageBudget(self.limit, self._clock())
        try:
            while True:
                message = await self.link.receive()
                if message is None:
                    break
                if not self._solicited(message) and not budget.spend(self._clock()):
                    self.hung_up = budget.reason()  # the supervisor logs it and reports it
                    break
                self._handle(message)
        except TransportError as error:
            log.warning("agent %s: %s", self.node, error)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(TransportError(f"node {self.node}: connection lost"))
            self.closed.set()

    def _solicited(self, message: dict[str, Any]) -> bool:
        """A reply to a request of the head's, which the head's requests already bound."""
        return message.get("type") == "log_data" and message.get("req") in self._pending

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "updates":
            self._post_updates(self._admitted(message["updates"]))
        elif kind == "heartbeat":
            if message.get("cpu_s") is not None:  # checked by the link: finite, >= 0
                self.cpu_seconds = float(message["cpu_s"])
            self.loop.post(ev.NodeHeartbeat(cause=self._cause(), now=now_ms(), node=self.node))
        elif kind == "gpus":
            gpus, reason = gpus_of(message["gpus"]), message.get("gpus_reason")
            self.loop.post(
                ev.NodeGpusChanged(
                    cause=self._cause(), now=now_ms(), node=self.node, gpus=gpus, reason=reason
                )
            )
        elif kind == "slurm":
            self.slurm = {"nodes": message["nodes"], "trouble": message.get("trouble")}
        elif kind == "log_data":
            future = self._pending.pop(message.get("req", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
        elif kind == "error":
            self._complain("agent %s reports: %s", self.node, message.get("reason"))

    def _admitted(self, updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The updates this node may send: an id that is no attempt id, or names an attempt
        placed on another node, is dropped here with its reason (and never acknowledged, so
        the agent keeps what it has); the core checks again when it steps the event."""
        kept = []
        for update in updates:
            aid = update["attempt_id"]
            why = foreign_report(self.loop.state, self.node, aid)
            if why is None:
                kept.append(update)
            else:
                self._complain(
                    "agent %s: ignored its report on attempt %r: %s", self.node, aid, why
                )
        return kept

    def _complain(self, text: str, *args: object) -> None:
        """A warning about what the agent said, up to ``LOGGED_COMPLAINTS`` a connection."""
        self._complaints += 1
        if self._complaints <= LOGGED_COMPLAINTS:
            log.warning(text, *args)
        if self._complaints == LOGGED_COMPLAINTS:
            log.warning(
                "agent %s: %d warnings about what it sent: no more are logged until it reconnects",
                self.node,
                LOGGED_COMPLAINTS,
            )

    def _post_updates(self, updates: list[dict[str, Any]]) -> None:
        for update in updates:
            event = update_event(self.node, self._cause(), update)
            after: Callable[[], None] | None = None
            if protocol.is_final(update):
                after = self._acker(update["attempt_id"])
            self.loop.post(event, after)

    def _acker(self, attempt_id: str) -> Callable[[], None]:
        def ack() -> None:
            if not self._to_ack:  # the first of a batch schedules one message for all
                asyncio.get_running_loop().call_soon(self._flush_acks)
            self._to_ack.append(attempt_id)

        return ack

    def _flush_acks(self) -> None:
        ids, self._to_ack = self._to_ack, []
        waiting = self._send_now(protocol.ack(ids))
        if waiting is not None:
            asyncio.get_running_loop().create_task(waiting)

    async def _send(self, message: dict[str, Any]) -> None:
        waiting = self._send_now(message)
        if waiting is not None:
            await waiting

    def _send_now(self, message: dict[str, Any]) -> Coroutine[Any, Any, None] | None:
        """Sent at once where the link can (``AgentLink.send_now``); else a coroutine that
        finishes the send. A failed send is logged, never raised: the agent's reconnect and
        hello reconcile whatever it missed."""
        try:
            waiting = self.link.send_now(message)
        except (TransportError, OSError) as error:
            log.warning("agent %s: send failed: %s", self.node, error)
            return None
        return None if waiting is None else self._finish_send(waiting)

    async def _finish_send(self, waiting: Awaitable[None]) -> None:
        try:
            await waiting
        except (TransportError, OSError) as error:
            log.warning("agent %s: send failed: %s", self.node, error)

    async def launch(self, launches: list[LaunchAttempt], keys: LaunchKeys | None = None) -> None:
        waiting = self.launch_now(launches, keys)
        if waiting is not None:
            await waiting

    def launch_now(
        self, launches: list[LaunchAttempt], keys: LaunchKeys | None = None
    ) -> Coroutine[Any, Any, None] | None:
        """One ``launch`` message, sent at once where the link can (else a coroutine that
        finishes it); a gang's node carries its gang's ``launch_key``."""
        specs: list[dict[str, Any]] = []
        for c in launches:
            spec: dict[str, Any] = dict(
                protocol.attempt_spec(
                    c.attempt_id,
                    list(c.command),
                    env=dict(c.environment),
                    cwd=c.workdir,
                    timeout_s=c.timeout_s,
                    gpus=c.gpus,
                    vcpus=max(1, math.ceil(c.cpu_milli / 1000)),
                    memory_mib=c.memory_mib,
                    user=c.user,
                )
            )
            if c.gang_try is not None and keys is not None:
                spec["launch_key"] = keys.key_for(c.gang_try)
            specs.append(spec)
        return self._send_now(protocol.launch(specs))  # type: ignore[arg-type]

    async def kill(self, command: KillAttempt) -> None:
        await self._send(protocol.kill(command.attempt_id, command.reason))

    async def read_log(self, attempt_id: str, offset: int, max_bytes: int) -> dict[str, Any]:
        """A chunk of an attempt's output; ``ValidationError`` for a window out of bounds, and
        ``TimeoutError`` after ``log_timeout_s`` (the request is forgotten either way)."""
        check_log_window(offset, max_bytes)
        req = next(self._requests)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req] = future
        try:
            await self.link.send(protocol.read_log(req, attempt_id, offset, max_bytes))
            return await asyncio.wait_for(future, timeout=self.log_timeout_s)
        finally:
            self._pending.pop(req, None)


def check_log_window(offset: int, max_bytes: int) -> None:
    """Bound a log read before it reaches an agent: a file offset is at most 2**62 (an agent
    seeking past 2**63 - 1 fails), and one reply carries at most ``MAX_LOG_CHUNK`` bytes."""
    if not 0 <= offset <= MAX_LOG_OFFSET:
        raise ValidationError("offset", f"must be an integer from 0 to 2**62 (got {offset})")
    if not 1 <= max_bytes <= MAX_LOG_CHUNK:
        raise ValidationError(
            "max_bytes", f"must be an integer from 1 to {MAX_LOG_CHUNK:,} (got {max_bytes})"
        )
