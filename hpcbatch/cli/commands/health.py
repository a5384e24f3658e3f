"""``hpcbatch health``: is the head up, and which version is it?"""

from __future__ import annotations

import argparse
import sys

from hpcbatch.cli.context import EXIT_OK, Context


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser("health", parents=[common], help="check that the head answers")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    reply = ctx.client.get("/hpcbatch/v1/health")
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(
            f"{reply.get('status', '?')} (hpcbatch {reply.get('version', '?')} at {ctx.endpoint})\n"
        )
    return EXIT_OK
