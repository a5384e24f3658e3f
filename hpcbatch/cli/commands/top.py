"""``hpcbatch top``: a live view of the cluster for people on the head node.

Every second it asks the head once (``GET /hpcbatch/v1/top``) and redraws the whole screen
(``cli/topview.py``): queues with their depth by status, nodes with vCPU and GPU bars, the newest
running and failed jobs with their reasons. It draws with rich's ``Live`` on the alternate screen,
sized to the terminal each time (an 80x24 SSH session included), and reads keys in cbreak mode
without blocking: ``q`` quits. The terminal is put back as it was on every way out — ``q``,
Ctrl-C, the head going away, an error.

Exit codes: 0 after ``q`` (or ``--once``), 130 after Ctrl-C, 143 after SIGTERM, 4 when the head cannot be reached or
stops answering (refused, timed out: the message names the endpoint), 3 and 5 as every command.
``--once`` prints one frame, as wide as the terminal (80 columns when there is none), and exits:
for scripts; so does ``top`` when its output is not a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from hpcbatch.cli.context import EXIT_OK, EXIT_UNREACHABLE, Context, warn

REFRESH_S = 1.0
REQUEST_TIMEOUT_S = 5.0  # a head that does not answer a read in this long has gone away
QUIT_KEYS = b"qQ"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "top", parents=[common], help="live view of queues, nodes and jobs (q quits)"
    )
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument(
        "--jobs",
        type=int,
        default=10,
        metavar="N",
        help="how many of the newest running and failed jobs to ask for (1-100, default 10)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.cli.client import HeadUnreachableError

    client = ctx.make_client(timeout=REQUEST_TIMEOUT_S)
    try:
        if args.once or ctx.json_output or not sys.stdout.isatty():
            return _once(client, ctx, args.jobs)
        return _live(client, ctx.endpoint, args.jobs)
    except HeadUnreachableError as exc:
        warn(f"hpcbatch top: the head went away: {exc.message}")
        return EXIT_UNREACHABLE
    finally:
        client.close()


def fetch(client: Any, jobs: int) -> dict[str, Any]:
    reply: dict[str, Any] = client.get("/hpcbatch/v1/top", {"jobs": jobs})
    return reply


def _once(client: Any, ctx: Context, jobs: int) -> int:
    from hpcbatch.cli.main import terminal_width
    from hpcbatch.cli.topview import frame_text

    doc = fetch(client, jobs)
    if ctx.json_output:
        ctx.emit_json(doc)
    else:
        sys.stdout.write(frame_text(doc, ctx.endpoint, terminal_width()))
    return EXIT_OK


def _live(client: Any, endpoint: str, jobs: int) -> int:
    from rich.console import Console
    from rich.live import Live

    from hpcbatch.cli.topview import frame

    console = Console()
    unicode = console.encoding.lower().startswith("utf")
    doc = fetch(client, jobs)  # before the screen changes: a head not there is one plain line
    with (
        exit_on_signals(),
        keys(sys.stdin) as read_keys,
        Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False) as live,
    ):
        while True:
            width, height = console.size
            live.update(frame(doc, endpoint, width, height, unicode=unicode), refresh=True)
            deadline = time.monotonic() + REFRESH_S
            while (left := deadline - time.monotonic()) > 0:
                if any(key in QUIT_KEYS for key in read_keys(left)):
                    return EXIT_OK
            doc = fetch(client, jobs)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP (the SSH session closed) end top through the ``with`` blocks that put
    the terminal back, as Ctrl-C does, rather than killing it in cbreak mode on the alternate
    screen; the exit status is the shell's 128 + the signal's number."""

    def leave(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    saved = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def keys(stream: Any) -> Iterator[Any]:
    """A function ``read(timeout) -> bytes`` of the keys pressed within ``timeout`` seconds,
    with the terminal in cbreak mode (keys arrive unbuffered, unechoed; Ctrl-C still
    interrupts) until the block ends, however it ends. Without a terminal on ``stream`` no key
    ever comes and ``read`` only waits."""
    try:
        fd = stream.fileno()
        interactive = os.isatty(fd)
    except (AttributeError, OSError, ValueError):
        fd, interactive = -1, False
    if not interactive:
        yield _no_keys
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    state = {"open": True}

    def read(timeout: float) -> bytes:
        if not state["open"]:
            time.sleep(timeout)
            return b""
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return b""
        data = os.read(fd, 64)
        if not data:  # the terminal hung up: stop watching it, keep drawing
            state["open"] = False
        return data

    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _no_keys(timeout: float) -> bytes:
    time.sleep(timeout)
    return b""
