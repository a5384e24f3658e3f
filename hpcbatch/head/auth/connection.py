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
_NO_REQUEST = object()
MAX_REQUEST_HEAD = 64 * 1024  # request line and headers; a SigV4 request's are ~1 KiB
_TOO_LARGE_BODY = (
    b'{"__type":"ClientException","message":"the request line and headers are larger than '
    + str(MAX_REQUEST_HEAD).encode()
    + b' bytes"}'
)
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"x-amzn-errortype: ClientException\r\nconnection: close\r\ncontent-length: "
    + str(len(_TOO_LARGE_BODY)).encode()
    + b"\r\n\r\n"
    + _TOO_LARGE_BODY
)


class HeadHttpProtocol(HttpToolsProtocol):
    """Also: a request whose line and headers pass MAX_REQUEST_HEAD bytes is answered 431 and
    its connection closed (uvicorn's parser would keep all of it: one client could fill the
    head's memory and stall every other request)."""

    peer: Peer = REMOTE_UNKNOWN
    # uvicorn makes a new ``cycle`` when a request's headers are complete: while ``cycle`` is
    # still the one it had when the request began, its headers are not all here (this costs a
    # request nothing more; an on_headers_complete hook cost ~1 us)
    begun: object = _NO_REQUEST
    head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.peer = peer_of(transport.get_extra_info("socket"))
        self.extensions = {PEER_KEY: self.peer}  # one for all the connection's requests
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        _data_received(self, data)
        if self.cycle is self.begun and not self.transport.is_closing():
            self.head_bytes += len(data)
            if self.head_bytes > MAX_REQUEST_HEAD:
                self.transport.write(TOO_LARGE)
                self.transport.close()

    def on_message_begin(self) -> None:
        _on_message_begin(self)
        self.begun, self.head_bytes = self.cycle, 0
        scope: Any = self.scope
        own = scope.get("extensions")  # uvicorn 0.54's httptools scope has none of its own
        scope["extensions"] = {**own, PEER_KEY: self.peer} if own else self.extensions


_data_received = HttpToolsProtocol.data_received
_on_message_begin = HttpToolsProtocol.on_message_begin
