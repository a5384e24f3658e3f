"""Send the core's commands to the agents, batched: one ``launch`` message per node per batch.

A command for a node with no live session is dropped on purpose: the attempt stays STARTING in
the state, and when the agent says hello again the core's reconciliation relaunches it.
The launch of a gang's node carries the gang's launch key (``launch_keys``), added here, at
the edge, so the key never enters the core, the journal or the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from hpcbatch.core.commands import Command, KillAttempt, LaunchAttempt
from hpcbatch.head.agents import AgentSession
from hpcbatch.head.launch_keys import LaunchKeys

log = logging.getLogger("hpcbatch.dispatch")


class Dispatcher:
    def __init__(self, launch_keys: LaunchKeys | None = None) -> None:
        self.sessions: dict[str, AgentSession] = {}
        self.launch_keys = launch_keys or LaunchKeys()  # a gang's nodes get its key at send

    async def __call__(self, commands: list[Command]) -> None:
        launches: dict[str, list[LaunchAttempt]] = defaultdict(list)
        for command in commands:
            session = self.sessions.get(command.node)
            if session is None:
                # debug: one line per command would flood the terminal, and show job contents
                log.debug("node %s not connected; %s waits for it", command.node, command)
                continue
            if isinstance(command, LaunchAttempt):
                launches[command.node].append(command)
            elif isinstance(command, KillAttempt):
                await session.kill(command)
        # One message per node. A local link takes it at once (no task per node: a thousand
        # nodes' launches cost one pass over them); over SSH each send is a hop to that link's
        # writer thread, all at once, and the loop waits for them before its next batch.
        waiting = [
            sending
            for node, batch in launches.items()
            if (sending := self.sessions[node].launch_now(batch, self.launch_keys)) is not None
        ]
        if waiting:
            await asyncio.gather(*waiting)
