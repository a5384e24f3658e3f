"""``hpcbatch console``: the web console's address, opened in a browser where there is one.

The address is the endpoint the CLI calls when that is http(s); on the head's Unix socket, the
head says where it listens (``GET /hpcbatch/v1/health``: ``console``). A browser is opened only
where a graphical one can be (``$DISPLAY`` or ``$WAYLAND_DISPLAY``, or macOS), and never with
``--no-browser``: on a server over SSH a text browser would take the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys

from hpcbatch.cli.context import EXIT_OK, Context

EXIT_NO_ADDRESS = 3  # as a refusal: the head says it has no address a browser reaches


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "console",
        parents=[common],
        help="print the web console's address (and open it in a browser where there is one)",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="print the address only, open nothing"
    )
    parser.set_defaults(func=run)


def console_url(endpoint: str, health: dict[str, object]) -> str | None:
    if endpoint.startswith(("http://", "https://")):
        return endpoint.rstrip("/") + "/console/"
    found = health.get("console")
    return found if isinstance(found, str) else None


def _graphical() -> bool:
    return sys.platform == "darwin" or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )


def run(args: argparse.Namespace, ctx: Context) -> int:
    health = ctx.client.get("/hpcbatch/v1/health")
    url = console_url(ctx.endpoint, health)
    if url is None:
        sys.stderr.write(
            "error: the head listens on no TCP address (listen is a Unix socket or empty), so "
            "no browser can reach its console; set listen (e.g. 127.0.0.1:7650) in its config\n"
        )
        return EXIT_NO_ADDRESS
    if ctx.json_output:
        ctx.emit_json({"console": url})
    else:
        sys.stdout.write(url + "\n")
        if not args.no_browser and _graphical() and sys.stdout.isatty():
            import webbrowser

            webbrowser.open(url)
    return EXIT_OK
