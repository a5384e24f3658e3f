"""The embedded LOCAL compute environment: agents on the head's own host, one per virtual node.

Each node runs the same agent code remote hosts run, as a detached daemon with its own state
directory under ``<data dir>/agents/<node>``, so a head restart (even ``kill -9``) leaves its
jobs running. A supervisor per node connects, keeps a session, and reconnects with backoff;
a node unreachable for ``heartbeat_timeout_s`` is reported lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

from hpcbatch import protocol
from hpcbatch.core import events as ev
from hpcbatch.errors import TransportError
from hpcbatch.head.agents import AgentSession
from hpcbatch.head.config import HeadConfig
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.loop import HeadLoop, now_ms
from hpcbatch.transport.local import connect_local_agent

log = logging.getLogger("hpcbatch.local")

LOCAL_CE = "local"


def local_node_names(config: HeadConfig) -> list[str]:
    return [f"local-{i + 1}" for i in range(config.local.nodes)]


class LocalNodes:
    def __init__(self, config: HeadConfig, loop: HeadLoop, dispatcher: Dispatcher, head_id: str):
        self.config = config
        self.loop = loop
        self.dispatcher = dispatcher
        self.head_id = head_id
        self._tasks: list[asyncio.Task[None]] = []

    def state_dir(self, node: str) -> Path:
        return self.config.data_dir / "agents" / node

    def start(self) -> None:
        for name in local_node_names(self.config):
            self._tasks.append(asyncio.get_running_loop().create_task(self._supervise(name)))

    async def wait_connected(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        names = set(local_node_names(self.config))
        while not names <= set(self.dispatcher.sessions):
            if time.monotonic() > deadline:
                raise TransportError(f"local agents did not connect within {timeout_s} s")
            await asyncio.sleep(0.02)

    async def _connect(self, name: str) -> AgentSession:
        local = self.config.local
        link = await connect_local_agent(
            self.state_dir(name),
            name,
            vcpus=local.vcpus or None,
            memory_mib=local.memory_mib or None,
            gpus=list(local.gpus) or None,
            head_id=self.head_id,
        )
        return AgentSession(name, LOCAL_CE, link, self.loop)

    async def _supervise(self, name: str) -> None:
        backoff = 0.1
        lost_since: float | None = None
        while True:
            try:
                session = await self._connect(name)
            except TransportError as error:
                log.warning("local node %s: %s", name, error)
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > self.config.heartbeat_timeout_s:
                    self.loop.post(
                        ev.NodeLost(
                            cause=f"{name}#lost",
                            now=now_ms(),
                            node=name,
                            reason=f"agent unreachable: {error}",
                        )
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff, lost_since = 0.1, None
            self.dispatcher.sessions[name] = session
            try:
                await session.run()
            finally:
                self.dispatcher.sessions.pop(name, None)
            lost_since = time.monotonic()

    async def stop(self) -> None:
        """Stop supervising and let the agents exit; their jobs keep running (the wrapper that
        records each exit status outlives the agent) and the next head re-adopts them."""
        sessions = list(self.dispatcher.sessions.values())  # cancelling unregisters them
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for session in sessions:
            with contextlib.suppress(TransportError, OSError):
                await session.link.send(protocol.shutdown(kill_jobs=False))
                await session.link.close()
        self.dispatcher.sessions.clear()
