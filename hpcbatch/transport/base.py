"""The head's view of one agent connection, independent of how bytes travel.

Vocabulary:
    link     one live, greeted connection to one agent: the head sends protocol messages
             (hpcbatch.protocol) and receives the agent's, in order. ``hello`` holds the
             agent's hello reply (node capacity + the spool's attempts) received when the
             link was made. Local links run over the agent's Unix socket; SSH links will run
             the same protocol over an exec channel running ``hpcbatch_agent attach``.
    closed   ``receive`` returns None: the agent or the connection went away. Jobs are not
             affected; reconnecting yields a fresh hello to reconcile from.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol


class AgentLink(Protocol):
    hello: dict[str, Any]

    async def send(self, message: dict[str, Any]) -> None:
        """Send one head message. Raises hpcbatch.errors.TransportError if the link is gone."""
        ...

    def send_now(self, message: dict[str, Any]) -> Awaitable[None] | None:
        """Send one head message without a task where the link can: None once it is on its
        way, in order with every other send; else an awaitable that completes the send (the
        caller awaits it or makes it a task). Raises TransportError as ``send`` does."""
        ...

    async def receive(self) -> dict[str, Any] | None:
        """The next agent message, or None once the link has closed.

        Raises hpcbatch.errors.ProtocolError on a malformed message."""
        ...

    async def close(self) -> None:
        """Close the link (never the agent, never its jobs)."""
        ...
