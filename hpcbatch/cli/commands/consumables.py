"""``hpcbatch consumables``: consumable resources (licenses, tokens; docs/consumable-resources.md).

A **consumable resource** is a counted thing jobs hold while they run (``submit --consumable
NAME=N``): a REPLENISHABLE one comes back when the job ends, a NON_REPLENISHABLE one is used
up. ``update`` sets the total or adds to or removes from it (UpdateConsumableResource's
SET/ADD/REMOVE); ``jobs NAME`` lists the jobs that need it (ListJobsByConsumableResource).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hpcbatch.cli.commands import _args
from hpcbatch.cli.context import EXIT_OK, Context

TYPES = ("REPLENISHABLE", "NON_REPLENISHABLE")
REASON_WIDTH = 40


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "consumables",
        parents=[common],
        help="manage consumable resources (licenses, tokens)",
        description="Consumable resources are counted things jobs hold while they run "
        "(submit --consumable NAME=N): a job waits until enough of each it needs is free.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[common], help="list consumable resources (default)"
    )
    listing.add_argument(
        "--name", metavar="NAME[*]", help="only this name, or the names starting so (NAME*)"
    )
    describe = actions.add_parser("describe", parents=[common], help="show consumable resources")
    describe.add_argument("refs", nargs="+", metavar="NAME|ARN")
    create = actions.add_parser("create", parents=[common], help="create a consumable resource")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--total", type=_args.non_negative_int, required=True, metavar="N", help="totalQuantity"
    )
    create.add_argument(
        "--type",
        type=resource_type,
        help="REPLENISHABLE (default: back when a job ends) or NON_REPLENISHABLE (used up)",
    )
    create.add_argument(
        "--tag", type=_args.key_value, action="append", default=[], metavar="K=V", help="tag"
    )
    update = actions.add_parser(
        "update", parents=[common], help="set, add to or remove from the total"
    )
    update.add_argument("ref", metavar="NAME|ARN")
    change = update.add_mutually_exclusive_group(required=True)
    for flag, operation in (("--set", "SET"), ("--add", "ADD"), ("--remove", "REMOVE")):
        change.add_argument(
            flag,
            type=_args.non_negative_int,
            metavar="N",
            help=f"operation {operation}",
        )
    delete = actions.add_parser("delete", parents=[common], help="delete a consumable resource")
    delete.add_argument("ref", metavar="NAME|ARN")
    jobs = actions.add_parser("jobs", parents=[common], help="jobs that need a consumable resource")
    jobs.add_argument("ref", metavar="NAME|ARN")
    jobs.add_argument("--status", type=str.upper, metavar="STATUS", help="only jobs in STATUS")
    jobs.add_argument("--job-name", metavar="NAME[*]", help="only jobs so named (NAME* prefix)")
    parser.set_defaults(func=run, action=None, name=None)


def resource_type(text: str) -> str:
    upper = text.upper()
    if upper not in TYPES:
        raise argparse.ArgumentTypeError(
            f"expected REPLENISHABLE or NON_REPLENISHABLE, got {text!r}"
        )
    return upper


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "create":
        body: dict[str, Any] = {"consumableResourceName": args.name, "totalQuantity": args.total}
        if args.type:
            body["resourceType"] = args.type
        if args.tag:
            body["tags"] = dict(args.tag)
        reply = ctx.client.call("CreateConsumableResource", body)
        return done(ctx, reply, f"created consumable resource {args.name} (total {args.total})")
    if args.action == "update":
        operation, quantity = next(
            (op, value)
            for op, value in (("SET", args.set), ("ADD", args.add), ("REMOVE", args.remove))
            if value is not None
        )
        body = {"consumableResource": args.ref, "operation": operation, "quantity": quantity}
        reply = ctx.client.call("UpdateConsumableResource", body)
        total = reply.get("totalQuantity")
        return done(ctx, reply, f"updated consumable resource {args.ref}: total {total}")
    if args.action == "delete":
        reply = ctx.client.call("DeleteConsumableResource", {"consumableResource": args.ref})
        return done(ctx, reply, f"deleted consumable resource {args.ref}")
    if args.action == "describe":
        return describe(args, ctx)
    if args.action == "jobs":
        return list_jobs(args, ctx)
    return list_resources(args, ctx)


def done(ctx: Context, reply: dict[str, Any], message: str) -> int:
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(message + "\n")
    return EXIT_OK


def resource_row(resource: dict[str, Any]) -> list[str]:
    total, in_use = resource.get("totalQuantity"), resource.get("inUseQuantity")
    available = resource.get("availableQuantity")
    if available is None and total is not None and in_use is not None:
        available = total - in_use
    return [
        resource.get("consumableResourceName", ""),
        resource.get("resourceType", ""),
        "" if total is None else str(total),
        "" if in_use is None else str(in_use),
        "" if available is None else str(available),
    ]


HEADERS = ["NAME", "TYPE", "TOTAL", "IN USE", "AVAILABLE"]


def list_resources(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {}
    if args.name:
        body["filters"] = [{"name": "CONSUMABLE_RESOURCE_NAME", "values": [args.name]}]
    resources = list(ctx.client.paginate("ListConsumableResources", body, "consumableResources"))
    if ctx.json_output:
        ctx.emit_json({"consumableResources": resources, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = [resource_row(r) for r in resources]
    sys.stdout.write(render.table(HEADERS, rows) + "\n")
    return EXIT_OK


def describe(args: argparse.Namespace, ctx: Context) -> int:
    resources = [
        ctx.client.call("DescribeConsumableResource", {"consumableResource": ref})
        for ref in args.refs
    ]
    if ctx.json_output:
        ctx.emit_json({"consumableResources": resources})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = [
        resource_row(r) + [render.fmt_time(r.get("createdAt")), r.get("consumableResourceArn", "")]
        for r in resources
    ]
    sys.stdout.write(render.table([*HEADERS, "CREATED", "ARN"], rows) + "\n")
    return EXIT_OK


def list_jobs(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {"consumableResource": args.ref}
    filters = []
    if args.status:
        filters.append({"name": "JOB_STATUS", "values": [args.status]})
    if args.job_name:
        filters.append({"name": "JOB_NAME", "values": [args.job_name]})
    if filters:
        body["filters"] = filters
    jobs = list(ctx.client.paginate("ListJobsByConsumableResource", body, "jobs"))
    if ctx.json_output:
        ctx.emit_json({"jobs": jobs, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = [
        [
            render.short_name(job.get("jobArn")),
            job.get("jobName", ""),
            job.get("jobStatus", ""),
            str(job.get("quantity", "")),
            render.short_name(job.get("jobQueueArn")),
            render.fmt_time(job.get("startedAt")),
            render.truncate(job.get("statusReason"), REASON_WIDTH),
        ]
        for job in jobs
    ]
    headers = ["JOB ID", "NAME", "STATUS", "QUANTITY", "QUEUE", "STARTED", "REASON"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK
