"""``hpcbatch queues``: list, describe, create, update and delete job queues, and show a
queue's dispatch order (``snapshot``).

A **job queue** holds RUNNABLE jobs in priority order and draws on up to three compute
environments, tried by ascending ``order``. A queue created with ``--policy`` (a scheduling
policy) is a fair-share queue for life: its policy can be replaced, never removed (AWS).
AWS refuses to delete an ENABLED queue, so ``delete --force`` disables it first.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hpcbatch.cli.commands import _args
from hpcbatch.cli.context import EXIT_OK, Context

REASON_WIDTH = 40


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser("queues", parents=[common], help="manage job queues")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list job queues (default)")
    listing.add_argument("names", nargs="*", metavar="NAME")
    describe = actions.add_parser(
        "describe",
        parents=[common],
        help="show queues in full: compute environments, policy, quota shares, time limits",
    )
    describe.add_argument("names", nargs="+", metavar="NAME")
    snapshot = actions.add_parser(
        "snapshot",
        parents=[common],
        help="the first RUNNABLE jobs in dispatch order, and what each share uses "
        "(GetJobQueueSnapshot)",
    )
    snapshot.add_argument("name", metavar="NAME")
    snapshot.add_argument(
        "--limit", type=_args.positive_int, default=20, metavar="N", help="jobs shown (default 20)"
    )
    create = actions.add_parser("create", parents=[common], help="create a job queue")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--priority", type=_args.non_negative_int, default=1, help="higher first (default: 1)"
    )
    update = actions.add_parser("update", parents=[common], help="change a job queue")
    update.add_argument("name", metavar="NAME")
    update.add_argument("--priority", type=_args.non_negative_int)
    for target in (create, update):
        target.add_argument(
            "--ce",
            type=ce_order,
            action="append",
            default=[],
            metavar="NAME[:ORDER]",
            help="compute environment (repeatable; ORDER defaults to its position)",
        )
        target.add_argument("--state", type=_args.state, help="ENABLED or DISABLED")
        target.add_argument(
            "--policy",
            metavar="NAME|ARN",
            help="scheduling policy: a fair-share queue (on update: replaces its policy; "
            "a FIFO queue cannot get one, and a policy cannot be removed)",
        )
    delete = actions.add_parser("delete", parents=[common], help="delete a job queue")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--force", action="store_true", help="disable the queue first")
    parser.set_defaults(func=run, action=None, names=[])


def ce_order(text: str) -> tuple[str, int | None]:
    name, sep, order = text.rpartition(":")
    if not sep:
        return text, None
    try:
        return name, int(order)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME[:ORDER], got {text!r}") from None


def ce_orders(pairs: list[tuple[str, int | None]]) -> list[dict[str, Any]]:
    return [
        {"order": position if order is None else order, "computeEnvironment": name}
        for position, (name, order) in enumerate(pairs, start=1)
    ]


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "create":
        body: dict[str, Any] = {"jobQueueName": args.name, "priority": args.priority}
    elif args.action == "update":
        body = {"jobQueue": args.name}
        if args.priority is not None:
            body["priority"] = args.priority
    elif args.action == "delete":
        return delete(args, ctx)
    elif args.action in ("describe", "snapshot"):
        from hpcbatch.cli.commands import _queue_views

        if args.action == "describe":
            return _queue_views.describe(args.names, ctx)
        return _queue_views.snapshot(args.name, args.limit, ctx)
    else:
        return list_queues(args, ctx)
    if args.ce:
        body["computeEnvironmentOrder"] = ce_orders(args.ce)
    if args.state:
        body["state"] = args.state
    if args.policy:
        from hpcbatch.cli.commands.policies import resolve_arn

        body["schedulingPolicyArn"] = resolve_arn(ctx, args.policy)
    operation = "CreateJobQueue" if args.action == "create" else "UpdateJobQueue"
    reply = ctx.client.call(operation, body)
    done(ctx, reply, f"{args.action}d queue {reply.get('jobQueueName', args.name)}")
    return EXIT_OK


def delete(args: argparse.Namespace, ctx: Context) -> int:
    if args.force:
        ctx.client.call("UpdateJobQueue", {"jobQueue": args.name, "state": "DISABLED"})
    reply = ctx.client.call("DeleteJobQueue", {"jobQueue": args.name})
    done(ctx, reply, f"deleted queue {args.name}")
    return EXIT_OK


def done(ctx: Context, reply: dict[str, Any], message: str) -> None:
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(message + "\n")


def list_queues(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {"jobQueues": args.names} if args.names else {}
    queues = list(ctx.client.paginate("DescribeJobQueues", body, "jobQueues"))
    if ctx.json_output:
        ctx.emit_json({"jobQueues": queues, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = []
    for queue in queues:
        order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
        ces = ",".join(
            f"{render.short_name(o.get('computeEnvironment'))}:{o.get('order')}" for o in order
        )
        rows.append(
            [
                queue.get("jobQueueName", ""),
                queue.get("state", ""),
                queue.get("status", ""),
                str(queue.get("priority", "")),
                ces,
                render.truncate(queue.get("statusReason"), REASON_WIDTH),
            ]
        )
    headers = ["NAME", "STATE", "STATUS", "PRIORITY", "COMPUTE ENVIRONMENTS", "REASON"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK
