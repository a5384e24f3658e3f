"""uvicorn's HTTP protocol with the kernel's word on the caller added to every request's scope.

``HeadHttpProtocol`` is uvicorn's httptools protocol (uvicorn's ``http=`` setting takes a class)
that, when a connection is made, asks the kernel who is at the other end (``peer.peer_of``)
and puts that ``Peer`` into each request's ASGI scope under ``extensions["hpcbatch.peer"]``.
Nothing a client sends can set it. A test of the head through the real server checks that
uvicorn still calls the two methods this class extends.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hpcbatch.head.auth.peer import REMOTE_UNKNOWN, Peer, peer_of

PEER_KEY = "hpcbatch.peer"


class HeadHttpProtocol(HttpToolsProtocol):
    peer: Peer = REMOTE_UNKNOWN

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.peer = peer_of(transport.get_extra_info("socket"))
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        scope: Any = self.scope
        scope["extensions"] = {**scope.get("extensions", {}), PEER_KEY: self.peer}
