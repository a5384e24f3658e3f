"""``hpcbatch head``: run the head daemon in the foreground.

The daemon lives in :mod:`hpcbatch.head.app`; it is imported only here, only when this command
runs, so every other command stays fast. The contract is one function::

    serve(data_dir: pathlib.Path, listen: str | None, config_path: pathlib.Path | None,
          log_level: str, metrics_listen: str | None = None, socket_path: str | None = None,
          insecure: bool = False) -> int

``listen`` is ``HOST:PORT`` or ``unix:/path/to/socket``, passed through as given;
``metrics_listen`` (``--metrics-listen``) is ``HOST:PORT`` or "" (no /metrics); ``socket_path``
(``--socket``) the local CLI's Unix socket or "" (none); None keeps the config's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hpcbatch.cli.context import EXIT_SERVER_ERROR, Context, warn

DATA_DIR_ENV = "HPCBATCH_DATA_DIR"
DEFAULT_LISTEN = "127.0.0.1:7650"
LOG_LEVELS = ("debug", "info", "warning", "error")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "head",
        help="run the head daemon in the foreground",
        description="Run the head daemon (API, scheduler, store) in the foreground. One head "
        "per data directory: a second one refuses at once, naming the first's pid; an address "
        "in use stops the head before it opens its state or reaches any host (exit 4).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"state directory (default: ${DATA_DIR_ENV}, else /var/lib/hpcbatch as "
        "root, else ~/.local/share/hpcbatch)",
    )
    parser.add_argument(
        "--listen",
        default=None,  # None: the config file's `listen`, else DEFAULT_LISTEN
        metavar="HOST:PORT|unix:/PATH",
        help=f"where to serve the API (default: the config's listen, else {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--metrics-listen",
        default=None,  # None: $HPCBATCH_METRICS_LISTEN, else the config's [metrics] listen
        metavar="HOST:PORT",
        help="where to serve Prometheus' /metrics; '' turns it off (default: "
        "$HPCBATCH_METRICS_LISTEN, else the config's [metrics] listen, else 127.0.0.1:9650)",
    )
    parser.add_argument(
        "--socket",
        default=None,  # None: $HPCBATCH_SOCKET, else the config's socket
        metavar="/PATH",
        help="the Unix socket local users' CLIs call (the kernel names each caller); '' for "
        "none (default: $HPCBATCH_SOCKET, else the config's socket, else "
        "/run/hpcbatch/head.sock as root)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain HTTP on a non-loopback --listen (a lab network only: a warning at "
        "every start; requests must still be signed)",
    )
    parser.add_argument("--config", type=Path, metavar="FILE.toml", help="configuration file")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="info (default): one line per notable event of the head; libraries (paramiko, "
        "uvicorn) only say warnings; debug: everything, and a line per request",
    )
    parser.set_defaults(func=run)


def default_data_dir(environ: dict[str, str] | None = None, euid: int | None = None) -> Path:
    environ = dict(os.environ) if environ is None else environ
    if environ.get(DATA_DIR_ENV):
        return Path(environ[DATA_DIR_ENV])
    if (os.geteuid() if euid is None else euid) == 0:
        return Path("/var/lib/hpcbatch")
    return Path.home() / ".local" / "share" / "hpcbatch"


def run(args: argparse.Namespace, ctx: Context) -> int:
    try:
        from hpcbatch.head.app import serve
    except ImportError as exc:
        # Either this build has no head (it is written separately) or one of its
        # dependencies is missing; both need a person, so say exactly which.
        warn(f"error: cannot start the head: {exc}")
        warn(
            "hint: the head needs hpcbatch.head.app.serve and the server dependencies "
            "(pip install 'hpcbatch')"
        )
        return EXIT_SERVER_ERROR
    data_dir = args.data_dir or default_data_dir()
    return int(
        serve(
            data_dir,
            args.listen,
            args.config,
            args.log_level,
            args.metrics_listen,
            socket_path=args.socket,
            insecure=args.insecure,
        )
    )
