"""``hpcbatch job-definitions`` (alias ``defs``): list, register, deregister.

A **job definition** is a named template, revisioned: registering a name again makes revision
n+1; ``NAME`` means its latest ACTIVE revision, ``NAME:REV`` one revision. Deregistered
revisions become INACTIVE (``list --all`` shows them).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from hpcbatch.cli.commands import _args
from hpcbatch.cli.context import EXIT_OK, Context

COMMAND_WIDTH = 40


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "job-definitions", aliases=["defs"], parents=[common], help="manage job definitions"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list job definitions (default)")
    listing.add_argument("name", nargs="?", metavar="NAME", help="only revisions of this name")
    listing.add_argument("--all", "-a", action="store_true", help="include INACTIVE revisions")
    reg = actions.add_parser(
        "register",
        parents=[common],
        help="register a job definition",
        usage="%(prog)s NAME [options] -- COMMAND [ARGS...]",
    )
    reg.add_argument("name", metavar="NAME")
    _args.add_resource_flags(reg)
    reg.add_argument(
        "--parameter",
        type=_args.key_value,
        action="append",
        default=[],
        metavar="K=V",
        help="default for a Ref:: parameter (repeatable)",
    )
    reg.add_argument(
        "--priority", type=_args.non_negative_int, metavar="N", help="schedulingPriority"
    )
    reg.set_defaults(accepts_command=True)
    dereg = actions.add_parser("deregister", parents=[common], help="make revisions INACTIVE")
    dereg.add_argument("definitions", nargs="+", metavar="NAME:REV|ARN")
    parser.set_defaults(func=run, action=None, name=None, all=False)


def register_request(args: argparse.Namespace) -> dict[str, Any]:
    container: dict[str, Any] = {}
    if args.command_argv:
        container["command"] = args.command_argv
    requirements = _args.resource_requirements(args)
    if requirements:
        container["resourceRequirements"] = requirements
    if args.env:
        container["environment"] = _args.environment(args.env)
    body: dict[str, Any] = {
        "jobDefinitionName": args.name,
        "type": "container",
        "containerProperties": container,
    }
    _args.retry_and_timeout(args, body)
    if args.parameter:
        body["parameters"] = dict(args.parameter)
    if args.priority is not None:
        body["schedulingPriority"] = args.priority
    return body


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "register":
        reply = ctx.client.call("RegisterJobDefinition", register_request(args))
        message = f"registered {reply.get('jobDefinitionName')}:{reply.get('revision')}"
    elif args.action == "deregister":
        for definition in args.definitions:
            reply = ctx.client.call("DeregisterJobDefinition", {"jobDefinition": definition})
        message = "deregistered " + " ".join(args.definitions)
    else:
        return list_defs(args, ctx)
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(message + "\n")
    return EXIT_OK


def list_defs(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {} if args.all else {"status": "ACTIVE"}
    if args.name:
        body["jobDefinitionName"] = args.name
    defs = list(ctx.client.paginate("DescribeJobDefinitions", body, "jobDefinitions"))
    defs.sort(key=lambda d: (d.get("jobDefinitionName", ""), d.get("revision", 0)))
    if ctx.json_output:
        ctx.emit_json({"jobDefinitions": defs, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = []
    for definition in defs:
        container = definition.get("containerProperties") or {}
        found = {r.get("type"): r.get("value") for r in container.get("resourceRequirements") or []}
        command = container.get("command")
        rows.append(
            [
                definition.get("jobDefinitionName", ""),
                str(definition.get("revision", "")),
                definition.get("status", ""),
                definition.get("type", ""),
                str(found.get("VCPU") or container.get("vcpus") or ""),
                str(found.get("MEMORY") or container.get("memory") or ""),
                str(found.get("GPU") or ""),
                render.truncate(shlex.join(command) if command else "", COMMAND_WIDTH),
            ]
        )
    headers = ["NAME", "REV", "STATUS", "TYPE", "VCPUS", "MEMORY", "GPUS", "COMMAND"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK
