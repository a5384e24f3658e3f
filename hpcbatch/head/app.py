"""``serve()``: run the head daemon in the foreground until SIGINT/SIGTERM.

Listens on ``HOST:PORT`` or ``unix:/path``. The order of start-up is the head's own safety:

1. lock the data directory (``datalock``): a second head on it refuses at once, naming the PID
   of the first, before it reads anything;
2. bind the listen address (``listener``), then the metrics address (``[metrics] listen``,
   unless it is ""): an address in use stops the head here, before it opens its state or
   connects to a single agent (it would otherwise replace the running head's agents and only
   then fail); ``/metrics`` answers from its own thread from then on (``hpcbatch.metrics``);
3. open the state and serve: the Head starts inside uvicorn's lifespan, on the socket bound in
   2, so the API answers only once the state is loaded and the local agents are connected.

Exit codes: 0 after a clean stop (uvicorn re-raises the SIGTERM or SIGINT it stopped on, so a
signalled head ends by that signal once it has stopped; the kernel drops the lock); 3 for a bad
configuration, a store that cannot be opened, or a start that failed inside the server (its
local agents did not connect: uvicorn's own exit 3); 4 when the data directory is held by
another head or the address cannot be bound.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from hpcbatch.errors import HpcbatchError
from hpcbatch.head import datalock, logsetup
from hpcbatch.head.config import load_config
from hpcbatch.head.listener import bind_listener

log = logging.getLogger("hpcbatch.head")

EXIT_CONFIG = 3
EXIT_NOT_STARTED = 4


METRICS_LISTEN_ENV = "HPCBATCH_METRICS_LISTEN"


def serve(
    data_dir: Path,
    listen: str | None,
    config_path: Path | None,
    log_level: str,
    metrics_listen: str | None = None,
) -> int:
    """``listen`` None keeps the config file's (or the default) address; ``metrics_listen``
    None: ``$HPCBATCH_METRICS_LISTEN`` if set, else the config's ``[metrics] listen``."""
    if metrics_listen is None:
        metrics_listen = os.environ.get(METRICS_LISTEN_ENV)
    logsetup.configure(log_level)
    try:
        lock = datalock.acquire(data_dir)
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_NOT_STARTED
    try:
        return _serve_locked(data_dir, listen, config_path, log_level, metrics_listen)
    finally:
        lock.release()


def _serve_locked(
    data_dir: Path,
    listen: str | None,
    config_path: Path | None,
    log_level: str,
    metrics_listen: str | None,
) -> int:
    import uvicorn

    from hpcbatch.head.api.app import ApiApp
    from hpcbatch.head.api.hpcbatch_routes import VERSION
    from hpcbatch.head.service import Head
    from hpcbatch.metrics.exporter import HeadMetrics
    from hpcbatch.metrics.server import MetricsServer

    try:
        config = load_config(
            config_path, data_dir=data_dir, listen=listen, metrics_listen=metrics_listen
        )
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_CONFIG
    try:
        listener = bind_listener(config.listen)
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_NOT_STARTED
    try:
        metrics_listener = (
            bind_listener(config.metrics_listen, "[metrics] listen (or --metrics-listen)")
            if config.metrics_listen
            else None
        )
    except HpcbatchError as error:
        listener.close()
        _say_error(error)
        return EXIT_NOT_STARTED
    metrics = HeadMetrics()
    exporter = None
    if metrics_listener is not None:
        exporter = MetricsServer(metrics_listener.sock, metrics.registry)
        exporter.start()
    try:
        log.info(
            "hpcbatch head %s (pid %d): data directory %s, serving %s%s",
            VERSION,
            os.getpid(),
            config.data_dir,
            listener.url,
            f", metrics on {metrics_listener.url}/metrics" if metrics_listener else "",
        )
        try:
            head = Head(config, metrics)
        except HpcbatchError as error:
            _say_error(error)
            return EXIT_CONFIG
        options: dict[str, object] = {
            "log_config": None,  # logsetup has set every logger; uvicorn must not redo it
            "log_level": None,
            "access_log": logsetup.access_log_wanted(log_level),
            "lifespan": "on",
            "timeout_graceful_shutdown": 5,
        }
        server = uvicorn.Server(uvicorn.Config(ApiApp(head), **options))  # type: ignore[arg-type]
        server.run(sockets=[listener.sock])
        return 0 if server.started else EXIT_NOT_STARTED
    finally:
        if exporter is not None:
            exporter.stop()
        if metrics_listener is not None:
            metrics_listener.close()
        listener.close()


def _say_error(error: HpcbatchError) -> None:
    print(f"error: {error.message}", file=sys.stderr, flush=True)
