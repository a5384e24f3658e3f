"""uvicorn serving the head's API on its TCP address (HTTPS when ``[tls]`` is set) and on its
Unix socket (always plain HTTP: the kernel vouches for local callers), in one event loop.

uvicorn applies one TLS setting to every socket it is given, so with TLS on it serves the TCP
socket and ``HeadServer`` adds the Unix socket itself once uvicorn has started, with the same
protocol class (``auth.connection.HeadHttpProtocol``: every request carries the kernel's word on
its peer), and closes it first on shutdown.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from hpcbatch.head.auth.connection import HeadHttpProtocol


class HeadServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, plain: list[socket.socket], on_stop: Any = None
    ) -> None:
        super().__init__(config)
        self.plain = plain  # served without TLS beside uvicorn's own sockets
        self.on_stop = on_stop  # ends long-lived responses (the console's event streams)
        self.plain_servers: list[asyncio.base_events.Server] = []

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        for sock in self.plain:

            def protocol() -> asyncio.Protocol:
                return HeadHttpProtocol(
                    config=self.config,
                    server_state=self.server_state,
                    app_state=self.lifespan.state,
                )

            self.plain_servers.append(await loop.create_server(protocol, sock=sock))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_stop is not None:
            self.on_stop()
        for server in self.plain_servers:
            server.close()
        await super().shutdown(sockets=sockets)


def serve_api(
    app: Any,
    options: dict[str, Any],
    tcp: socket.socket | None,
    unix: socket.socket | None,
    tls: tuple[str, str] | None,
) -> bool:
    """Serve until stopped; True if the server had started (the head's lifespan succeeded)."""
    if tls is not None and tcp is not None:  # HTTPS on TCP; the Unix socket beside it, plain
        options = {**options, "ssl_certfile": tls[0], "ssl_keyfile": tls[1]}
        served, plain = [tcp], [unix] if unix is not None else []
    else:
        served, plain = [s for s in (tcp, unix) if s is not None], []
    config = uvicorn.Config(app, http=HeadHttpProtocol, **options)
    server = HeadServer(config, plain, getattr(app, "closing", None))
    server.run(sockets=served)
    return bool(server.started)
