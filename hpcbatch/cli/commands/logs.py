"""``hpcbatch logs JOB``: print an attempt's output, optionally following it until it ends.

The head serves the log in chunks: each answer carries ``data``, the ``nextOffset`` to ask from
next and ``complete`` (the attempt ended and everything was read). Without ``--follow`` this
reads what exists now; with it, it polls (50 ms growing to 1 s, back to 50 ms after new output)
until ``complete``. Bytes are written as they come so ``hpcbatch logs -f JOB | grep`` streams.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from hpcbatch.cli.context import EXIT_OK, Context

FIRST_POLL_S = 0.05
MAX_POLL_S = 1.0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    from hpcbatch.cli.commands._args import positive_int

    parser = sub.add_parser("logs", parents=[common], help="print a job's log")
    parser.add_argument("job", metavar="JOB", help="job id (array child: PARENT:INDEX)")
    parser.add_argument(
        "--attempt", type=positive_int, metavar="N", help="attempt number (default: latest)"
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep printing until the attempt ends"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context, sleep: Callable[[float], None] = time.sleep) -> int:
    path = f"/hpcbatch/v1/jobs/{urllib.parse.quote(args.job, safe='')}/logs"
    offset = 0
    interval = FIRST_POLL_S
    while True:
        query: dict[str, Any] = {"offset": offset}
        if args.attempt is not None:
            query["attempt"] = args.attempt
        chunk = ctx.client.get(path, query)
        emit(chunk, ctx.json_output)
        next_offset = int(chunk.get("nextOffset", offset))
        grew = next_offset != offset
        offset = next_offset
        if chunk.get("complete"):
            return EXIT_OK
        if grew:
            interval = FIRST_POLL_S  # more may be waiting right behind it
            continue
        if not args.follow:
            return EXIT_OK
        sleep(interval)
        interval = min(interval * 1.5, MAX_POLL_S)


def emit(chunk: dict[str, Any], json_output: bool) -> None:
    if json_output:
        import json

        sys.stdout.write(json.dumps(chunk) + "\n")  # one JSON line per chunk: jq -r .data
    elif chunk.get("data"):
        sys.stdout.write(chunk["data"])
    sys.stdout.flush()
