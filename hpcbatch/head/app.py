"""``serve()``: run the head daemon in the foreground until SIGINT/SIGTERM.

Listens on ``listen`` (``HOST:PORT``, HTTPS with ``[tls]``; or ``unix:/path``) and on the Unix
socket ``socket`` (``$HPCBATCH_SOCKET``, ``--socket``; default ``/run/hpcbatch/head.sock`` as
root), where the local CLI calls it and the kernel names the caller. A non-loopback ``listen``
without TLS is refused unless ``insecure`` (a warning at every start). The order of start-up is the head's own safety:

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

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpcbatch.errors import HpcbatchError, ValidationError
from hpcbatch.head import datalock, logsetup
from hpcbatch.head.config import HeadConfig, is_loopback_listen, load_config
from hpcbatch.head.listener import Listener, ListenError, bind_listener

if TYPE_CHECKING:
    from hpcbatch.head.service import Head
    from hpcbatch.metrics.exporter import HeadMetrics

log = logging.getLogger("hpcbatch.head")

EXIT_CONFIG = 3
EXIT_NOT_STARTED = 4


METRICS_LISTEN_ENV = "HPCBATCH_METRICS_LISTEN"
SOCKET_ENV = "HPCBATCH_SOCKET"


def serve(
    data_dir: Path,
    listen: str | None,
    config_path: Path | None,
    log_level: str,
    metrics_listen: str | None = None,
    socket_path: str | None = None,
    insecure: bool = False,
) -> int:
    """``listen`` None keeps the config file's (or the default) address; ``metrics_listen``
    None: ``$HPCBATCH_METRICS_LISTEN`` if set, else the config's ``[metrics] listen``;
    ``socket_path`` None: ``$HPCBATCH_SOCKET`` if set, else the config's ``socket``."""
    if metrics_listen is None:
        metrics_listen = os.environ.get(METRICS_LISTEN_ENV)
    if socket_path is None:
        socket_path = os.environ.get(SOCKET_ENV)
    overrides = {"listen": listen, "metrics_listen": metrics_listen, "socket": socket_path}
    if insecure:
        overrides["insecure"] = True
    logsetup.configure(log_level)
    try:
        lock = datalock.acquire(data_dir)
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_NOT_STARTED
    try:
        return _serve_locked(data_dir, config_path, log_level, overrides)
    finally:
        lock.release()


def _serve_locked(
    data_dir: Path, config_path: Path | None, log_level: str, overrides: dict[str, Any]
) -> int:

    try:
        config = load_config(config_path, data_dir=data_dir, **overrides)
        tls = _check_tls(config.tls_cert, config.tls_key)
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_CONFIG
    raise_open_file_limit()
    try:
        listener = bind_listener(config.listen) if config.listen else None
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_NOT_STARTED
    try:
        unix = _bind_socket(config.socket) if config.socket else None
    except HpcbatchError as error:
        if listener is not None:
            listener.close()
        _say_error(error)
        return EXIT_NOT_STARTED
    try:
        return serve_bound(config, log_level, listener, unix, tls)
    finally:
        if unix is not None:
            unix.close()
        if listener is not None:
            listener.close()


def serve_bound(
    config: HeadConfig,
    log_level: str,
    listener: Listener | None,
    unix: Listener | None,
    tls: tuple[str, str] | None,
    make_head: Callable[[HeadConfig, HeadMetrics], Head] | None = None,
) -> int:
    """Serve the API (and metrics) on sockets already bound until stopped; ``make_head``
    builds the ``Head`` (``Head`` itself unless given: bench/simhead.py adds simulated
    nodes)."""
    from hpcbatch.head.api.app import ApiApp
    from hpcbatch.head.api.hpcbatch_routes import VERSION
    from hpcbatch.head.httpserver import serve_api
    from hpcbatch.head.service import Head
    from hpcbatch.metrics.exporter import HeadMetrics
    from hpcbatch.metrics.server import MetricsServer

    try:
        metrics_listener = (
            bind_listener(config.metrics_listen, "[metrics] listen (or --metrics-listen)")
            if config.metrics_listen
            else None
        )
    except HpcbatchError as error:
        _say_error(error)
        return EXIT_NOT_STARTED
    metrics = HeadMetrics()
    exporter = None
    if metrics_listener is not None:
        exporter = MetricsServer(metrics_listener.sock, metrics.registry)
        exporter.start()
    try:
        served = [x.url for x in (listener, unix) if x is not None]
        if tls is not None and listener is not None:
            served[0] = served[0].replace("http://", "https://", 1)
        log.info(
            "hpcbatch head %s (pid %d): data directory %s, serving %s%s",
            VERSION,
            os.getpid(),
            config.data_dir,
            " and ".join(served),
            f", metrics on {metrics_listener.url}/metrics" if metrics_listener else "",
        )
        if config.insecure and tls is None and not is_loopback_listen(config.listen or "unix:"):
            log.warning(
                "insecure: serving plain HTTP on %s, a non-loopback address: signed requests "
                "can be read and replayed within 5 minutes on this network; set [tls] cert and "
                "key for anything but a lab",
                config.listen,
            )
        try:
            head = (make_head or Head)(config, metrics)
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
        started = serve_api(
            ApiApp(head),
            options,
            listener.sock if listener is not None else None,
            unix.sock if unix is not None else None,
            tls,
        )
        return 0 if started else EXIT_NOT_STARTED
    finally:
        if exporter is not None:
            exporter.stop()
        if metrics_listener is not None:
            metrics_listener.close()


def _check_tls(cert: str, key: str) -> tuple[str, str] | None:
    """The [tls] pair, proven loadable now: a bad file is a config error at start (exit 3)."""
    if not cert:
        return None
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise ValidationError("config.tls", f"cannot load {cert} with {key}: {error}") from None
    return cert, key


def _bind_socket(path: str) -> Listener:
    """The local CLI's socket; its directory made (0755: any local user may reach it)."""
    directory = Path(path).parent
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as error:
        raise ListenError(
            f"cannot make {directory} for the socket {path}: {error.strerror}; set socket "
            '(or --socket, $HPCBATCH_SOCKET) to a path this user may create, or ""'
        ) from None
    return bind_listener(f"unix:{path}", "socket (or --socket, $HPCBATCH_SOCKET)")


def raise_open_file_limit() -> None:
    """Soft RLIMIT_NOFILE up to the hard limit: each API connection and agent link is a file,
    and 1,024 (a common soft default) is too few for a busy head."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_NOFILE,
                (hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20), hard),
            )


def _say_error(error: HpcbatchError) -> None:
    print(f"error: {error.message}", file=sys.stderr, flush=True)
