"""Keep one live session per node: connect, relay, reconnect with backoff, report what fails.

Vocabulary: a **node spec** says how to reach one node's agent — ``connect`` is
``connect_local_agent`` for the embedded LOCAL compute environment (agents on the head's own
host, one per virtual node, detached so a head restart leaves their jobs running) or
``connect_ssh_agent`` for an SSH host (one persistent connection, agent installed over SFTP).

A node whose connection fails is reported DOWN with the error — at once if it has no jobs at
stake (a wrong key or an unknown host key says so immediately), else only after
``heartbeat_timeout_s`` of trying, so a blip does not fail running jobs; its jobs are held
until the watchdog (service.py) declares it lost after ``node_lost_timeout_s``.

A node whose agent floods the head (its session hung up on it: ``flood.py``) goes DOWN at once
with the session's reason, its jobs held by the same rules, and is reconnected only after the
longest backoff: its agent is alive, so a quicker reconnection would only buy another flood,
and the reason stays readable in ``hpcbatch nodes`` meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hpcbatch import protocol
from hpcbatch.core import events as ev
from hpcbatch.errors import TransportError
from hpcbatch.head.agents import AgentSession, NodeProfile
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.flood import DEFAULT_LIMIT, FloodLimit
from hpcbatch.head.loop import HeadLoop, now_ms
from hpcbatch.transport.base import AgentLink

log = logging.getLogger("hpcbatch.nodes")

MAX_BACKOFF_S = 5.0
STABLE_S = 5.0  # a session that lasted this long resets the backoff


@dataclass(frozen=True)
class NodeSpec:
    name: str
    ce: str
    connect: Callable[[], Awaitable[AgentLink]]
    stop_agent_on_exit: bool = False  # the head's own local agents; never remote ones
    profile: NodeProfile = NodeProfile()  # what the config says of it (address, group, fabric)


class NodeSupervisor:
    def __init__(
        self,
        loop: HeadLoop,
        dispatcher: Dispatcher,
        heartbeat_timeout_s: float,
        message_limit: FloodLimit = DEFAULT_LIMIT,
    ):
        self.loop = loop
        self.dispatcher = dispatcher
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.message_limit = message_limit  # each session's budget (flood.py)
        self.specs: dict[str, NodeSpec] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, specs: list[NodeSpec]) -> None:
        running = asyncio.get_running_loop()
        for spec in specs:
            self.specs[spec.name] = spec
            self._tasks[spec.name] = running.create_task(self._supervise(spec), name=spec.name)

    async def forget(self, name: str) -> None:
        """Stop supervising ``name`` for good (a retired host): its link is closed and never
        made again, so no hello of its can bring the node back."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.specs.pop(name, None)

    async def wait_connected(self, names: list[str], timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not set(names) <= set(self.dispatcher.sessions):
            if time.monotonic() > deadline:
                missing = sorted(set(names) - set(self.dispatcher.sessions))
                raise TransportError(f"nodes {missing} did not connect within {timeout_s} s")
            await asyncio.sleep(0.02)

    def _at_stake(self, name: str) -> bool:
        node = self.loop.state.nodes.get(name)
        return node is not None and bool(node.attempts)

    async def _supervise(self, spec: NodeSpec) -> None:
        backoff = 0.1
        failing_since: float | None = None
        last_error = ""
        while True:
            try:
                link = await spec.connect()
            except TransportError as error:
                if error.message != last_error:  # a host that stays down: one line, not one a try
                    log.warning("node %s: %s (retrying)", spec.name, error)
                    last_error = error.message
                failing_since = failing_since or time.monotonic()
                waited = time.monotonic() - failing_since
                cause, now = f"{spec.name}#connect", now_ms()
                if not self._at_stake(spec.name):  # nothing to lose: say why at once
                    lost = ev.NodeLost(
                        cause=cause, now=now, node=spec.name, ce=spec.ce, reason=error.message
                    )
                    self.loop.post(lost)
                elif waited > self.heartbeat_timeout_s:  # hold its jobs; the watchdog decides
                    down = ev.NodeDown(cause=cause, now=now, node=spec.name, reason=error.message)
                    self.loop.post(down)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            failing_since, last_error = None, ""
            log.info("node %s: connected", spec.name)
            session = AgentSession(
                spec.name, spec.ce, link, self.loop, spec.profile, self.message_limit
            )
            self.dispatcher.sessions[spec.name] = session
            began = time.monotonic()
            try:
                await session.run()
            finally:
                self.dispatcher.sessions.pop(spec.name, None)
                with contextlib.suppress(TransportError, OSError):
                    await link.close()
            failing_since = time.monotonic()
            if session.hung_up is not None:
                self._flooded(spec.name, session.hung_up)
                backoff = MAX_BACKOFF_S  # and a flooding session never counts as stable
                await asyncio.sleep(backoff)
                continue
            log.warning("node %s: connection lost; reconnecting", spec.name)
            if failing_since - began < STABLE_S:  # an agent that drops us at once: back off
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            else:
                backoff = 0.1

    def _flooded(self, name: str, reason: str) -> None:
        """DOWN with the reason its session hung up for; its jobs are held, as for any link
        that fails, until it comes back or the watchdog declares it lost."""
        log.warning("node %s: %s; reconnecting in %g s", name, reason, MAX_BACKOFF_S)
        self.loop.post(ev.NodeDown(cause=f"{name}#flood", now=now_ms(), node=name, reason=reason))

    async def stop(self) -> None:
        """Stop supervising. The head's own local agents are told to exit (their jobs keep
        running, and the agent's keeper records each exit status; the next head re-adopts
        them); remote agents are left running and their links closed."""
        for session in list(self.dispatcher.sessions.values()):
            spec = self.specs.get(session.node)
            if spec is not None and spec.stop_agent_on_exit:
                with contextlib.suppress(TransportError, OSError):
                    await session.link.send(protocol.shutdown(kill_jobs=False))
        for task in self._tasks.values():  # each closes its link as it ends
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.dispatcher.sessions.clear()
