"""Send the core's commands to the agents, batched: one ``launch`` message per node per batch.

A command for a node with no live session is dropped on purpose: the attempt stays STARTING in
the state, and when the agent says hello again the core's reconciliation relaunches it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from hpcbatch.core.commands import Command, KillAttempt, LaunchAttempt
from hpcbatch.head.agents import AgentSession

log = logging.getLogger("hpcbatch.dispatch")


class Dispatcher:
    def __init__(self) -> None:
        self.sessions: dict[str, AgentSession] = {}

    async def __call__(self, commands: list[Command]) -> None:
        launches: dict[str, list[LaunchAttempt]] = defaultdict(list)
        for command in commands:
            session = self.sessions.get(command.node)
            if session is None:
                log.info("node %s not connected; %s waits for it", command.node, command)
                continue
            if isinstance(command, LaunchAttempt):
                launches[command.node].append(command)
            elif isinstance(command, KillAttempt):
                await session.kill(command)
        # One message per node, sent to every node at once: over SSH each send is a hop to
        # that link's writer thread, and the loop waits for them before its next batch.
        await asyncio.gather(
            *(self.sessions[node].launch(batch) for node, batch in launches.items())
        )
