"""``/metrics`` served from a thread of its own, on a socket the head bound before its state.

Vocabulary: the **metrics listener** is a ``hpcbatch.head.listener.Listener`` bound by
``serve()`` right after the API's (so a port in use stops the head before it opens its state);
``MetricsServer`` hands it to prometheus-client's WSGI app under a threading ``wsgiref`` server.
A scrape runs in that thread (one per connection), reads the registry's collectors (the last
published snapshot, never the live State) and never touches the event loop.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

log = logging.getLogger("hpcbatch.metrics")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - wsgiref's name
        log.debug("scrape from %s: " + format, self.address_string(), *args)


class MetricsServer:
    """Serves ``registry`` on ``sock`` (already bound and listening) until ``stop``."""

    def __init__(self, sock: socket.socket, registry: CollectorRegistry) -> None:
        server = ThreadingWSGIServer(sock.getsockname()[:2], _QuietHandler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()
        server.server_name, server.server_port = "hpcbatch", int(sock.getsockname()[1])
        server.setup_environ()
        server.set_app(make_wsgi_app(registry))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop answering (the socket is closed by its listener's owner)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
