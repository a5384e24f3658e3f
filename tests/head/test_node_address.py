"""A node's address (the main node's, for MPI) comes with its agent's hello: the SSH host's
address where the link has one, 127.0.0.1 for a LOCAL agent's virtual nodes."""

from __future__ import annotations

import asyncio

from hpcbatch.core.state import State
from hpcbatch.head.agents import AgentSession
from hpcbatch.head.dispatcher import Dispatcher
from hpcbatch.head.loop import HeadLoop
from hpcbatch.store import MemoryStore
from hpcbatch.transport.mock import MockAgentLink


def test_the_hello_carries_the_link_s_address_or_the_local_host() -> None:
    async def scenario() -> None:
        loop = HeadLoop(State(), MemoryStore(), Dispatcher())
        local = MockAgentLink("local-1")
        assert AgentSession("local-1", "ce", local, loop).joined_event([]).address == "127.0.0.1"
        remote = MockAgentLink("host-2")
        remote.address = "10.20.0.2"  # type: ignore[attr-defined]  # as SshAgentLink has
        assert AgentSession("host-2", "ce", remote, loop).joined_event([]).address == "10.20.0.2"

    asyncio.run(scenario())
