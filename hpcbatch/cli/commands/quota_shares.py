"""``hpcbatch quota-shares``: a job queue's quota shares (docs/quota-shares.md).

A **quota share** is a slice of one queue's capacity a group is guaranteed: its
``capacityLimits`` (units VCPU, GPU, MEMORY_MIB), a sharing **strategy** (RESERVE keeps its idle
quota, LEND lends it, LEND_AND_BORROW also borrows, up to ``borrowLimit`` % of its quota) and
in-share preemption. Jobs join one with SubmitJob's ``shareIdentifier``.

A share is named per queue: the API takes its ARN or ``QUEUE/quota-share/NAME``; the CLI also
takes ``QUEUE/NAME``, or ``NAME`` with ``--queue``. What a share uses now comes from
GetJobQueueSnapshot's ``quotaShareUtilization`` (DescribeQuotaShare has no usage).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hpcbatch.cli.commands import _args
from hpcbatch.cli.context import EXIT_OK, EXIT_USAGE, Context, warn

UNITS = ("VCPU", "GPU", "MEMORY_MIB")
STRATEGIES = ("RESERVE", "LEND", "LEND_AND_BORROW")
SHARE_MARK = "/quota-share/"


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "quota-shares",
        parents=[common],
        help="manage a queue's quota shares",
        description="Quota shares split a job queue's capacity between groups: each is "
        "guaranteed its quota, may lend what it leaves idle and borrow what others do, and "
        "gets its capacity back by preemption.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="list a queue's quota shares")
    listing.add_argument("--queue", "-q", required=True, metavar="Q", help="the job queue")
    describe = actions.add_parser("describe", parents=[common], help="show quota shares")
    describe.add_argument("refs", nargs="+", metavar="SHARE", help=REF_HELP)
    describe.add_argument("--queue", "-q", metavar="Q", help="the queue of SHAREs given by name")
    create = actions.add_parser("create", parents=[common], help="create a quota share")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--queue", "-q", metavar="Q", help="the job queue (required)")
    _args.add_from_json(create, "CreateQuotaShare")
    create.add_argument("--disabled", action="store_true", help="create it DISABLED")
    update = actions.add_parser("update", parents=[common], help="change a quota share")
    update.add_argument("ref", metavar="SHARE", help=REF_HELP)
    update.add_argument("--queue", "-q", metavar="Q", help="the queue of a SHARE given by name")
    _args.add_from_json(update, "UpdateQuotaShare")
    update.add_argument("--state", type=_args.state, help="ENABLED or DISABLED")
    for target in (create, update):
        target.add_argument(
            "--capacity",
            type=capacity,
            metavar="UNIT=N[,UNIT=N]",
            help="the quota: VCPU, GPU, MEMORY_MIB (e.g. VCPU=16,GPU=2)",
        )
        target.add_argument("--strategy", type=strategy, help=" | ".join(STRATEGIES))
        target.add_argument(
            "--borrow-limit",
            type=borrow_limit,
            metavar="PCT",
            help="LEND_AND_BORROW: borrow at most PCT %% of the quota (-1: unlimited, default)",
        )
        target.add_argument(
            "--in-share-preemption",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="a higher-priority job of the share may preempt lower-priority ones of it",
        )
    delete = actions.add_parser("delete", parents=[common], help="delete a quota share")
    delete.add_argument("ref", metavar="SHARE", help=REF_HELP)
    delete.add_argument("--queue", "-q", metavar="Q", help="the queue of a SHARE given by name")
    delete.add_argument("--force", action="store_true", help="disable it first")
    parser.set_defaults(func=run, action=None)


REF_HELP = "ARN, QUEUE/quota-share/NAME, QUEUE/NAME, or NAME with --queue"


def capacity(text: str) -> list[dict[str, Any]]:
    limits = []
    for part in text.split(","):
        unit, sep, value = part.partition("=")
        unit = unit.strip().upper()
        if not sep or unit not in UNITS:
            raise argparse.ArgumentTypeError(
                f"expected UNIT=N[,UNIT=N] with UNIT one of {', '.join(UNITS)}, got {text!r}"
            )
        try:
            amount = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{unit}: expected a whole number, got {value!r}"
            ) from None
        if amount < 0:
            raise argparse.ArgumentTypeError(f"{unit}: expected a number >= 0, got {amount}")
        limits.append({"maxCapacity": amount, "capacityUnit": unit})
    return limits


def strategy(text: str) -> str:
    upper = text.upper()
    if upper not in STRATEGIES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(STRATEGIES)}, got {text!r}")
    return upper


def borrow_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole percentage, got {text!r}") from None
    if value < -1:
        raise argparse.ArgumentTypeError(f"expected a percentage >= 0, or -1, got {value}")
    return value


def share_ref(ref: str, queue: str | None) -> str | None:
    """What the API takes for a share, or None when a bare NAME came without --queue."""
    if ref.startswith("arn:") or SHARE_MARK in ref:
        return ref
    if "/" in ref:
        queue_name, _, name = ref.partition("/")
        return f"{queue_name}{SHARE_MARK}{name}"
    if queue is None:
        return None
    return f"{queue}{SHARE_MARK}{ref}"


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action is None:
        warn("error: give an action: list --queue Q, describe, create, update or delete")
        return EXIT_USAGE
    if args.action == "list":
        return list_shares(args, ctx)
    if args.action == "create":
        return create(args, ctx)
    refs = args.refs if args.action == "describe" else [args.ref]
    resolved = [share_ref(ref, args.queue) for ref in refs]
    if None in resolved:
        warn(f"error: SHARE {refs[resolved.index(None)]!r}: give QUEUE/NAME, an ARN, or --queue Q")
        return EXIT_USAGE
    arns = [ref for ref in resolved if ref is not None]
    if args.action == "describe":
        return describe(arns, ctx)
    if args.action == "update":
        return update(args, arns[0], ctx)
    if args.force:  # delete
        ctx.client.call("UpdateQuotaShare", {"quotaShareArn": arns[0], "state": "DISABLED"})
    reply = ctx.client.call("DeleteQuotaShare", {"quotaShareArn": arns[0]})
    return done(ctx, reply, f"deleted quota share {args.ref}")


def sharing_config(args: argparse.Namespace, current: dict[str, Any] | None) -> dict[str, Any]:
    config = dict(current or {})
    if args.strategy is not None:
        config = {"strategy": args.strategy}
    if args.borrow_limit is not None:
        config["borrowLimit"] = args.borrow_limit
    return config


def apply_flags(args: argparse.Namespace, body: dict[str, Any]) -> None:
    if args.capacity is not None:
        body["capacityLimits"] = args.capacity
    if args.strategy is not None or args.borrow_limit is not None:
        body["resourceSharingConfiguration"] = sharing_config(
            args, body.get("resourceSharingConfiguration")
        )
    if args.in_share_preemption is not None:
        body["preemptionConfiguration"] = {
            "inSharePreemption": "ENABLED" if args.in_share_preemption else "DISABLED"
        }


def create(args: argparse.Namespace, ctx: Context) -> int:
    body = dict(args.from_json or {})
    body["quotaShareName"] = args.name
    if args.queue is not None:
        body["jobQueue"] = args.queue
    apply_flags(args, body)
    body.setdefault("preemptionConfiguration", {"inSharePreemption": "DISABLED"})
    if args.disabled:
        body["state"] = "DISABLED"
    for member, flag in (
        ("jobQueue", "--queue"),
        ("capacityLimits", "--capacity"),
        ("resourceSharingConfiguration", "--strategy"),
    ):
        if member not in body:
            warn(f"error: create needs {flag} (or {member} in --from-json)")
            return EXIT_USAGE
    reply = ctx.client.call("CreateQuotaShare", body)
    return done(ctx, reply, f"created quota share {args.name} ({reply.get('quotaShareArn', '')})")


def update(args: argparse.Namespace, arn: str, ctx: Context) -> int:
    body = dict(args.from_json or {})
    body["quotaShareArn"] = arn
    if args.borrow_limit is not None and args.strategy is None:
        # a borrowLimit travels inside resourceSharingConfiguration, with its strategy
        current = ctx.client.call("DescribeQuotaShare", {"quotaShareArn": arn})
        body.setdefault("resourceSharingConfiguration", current.get("resourceSharingConfiguration"))
    apply_flags(args, body)
    if args.state is not None:
        body["state"] = args.state
    if len(body) == 1:
        warn(
            "error: update needs --capacity, --strategy, --borrow-limit, "
            "--[no-]in-share-preemption, --state or --from-json"
        )
        return EXIT_USAGE
    reply = ctx.client.call("UpdateQuotaShare", body)
    return done(ctx, reply, f"updated quota share {args.ref}")


def done(ctx: Context, reply: dict[str, Any], message: str) -> int:
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(message + "\n")
    return EXIT_OK


def quota_text(limits: list[dict[str, Any]] | None) -> str:
    return ",".join(f"{lim.get('capacityUnit')}={lim.get('maxCapacity')}" for lim in limits or [])


def usage_by_share(ctx: Context, queue: str) -> dict[str, str] | None:
    """Each share's use (``VCPU=4,GPU=1``) from GetJobQueueSnapshot, None where the head's
    answer has no ``quotaShareUtilization``."""
    from hpcbatch.cli.render import number

    snapshot = ctx.client.call("GetJobQueueSnapshot", {"jobQueue": queue})
    utilization = (snapshot.get("queueUtilization") or {}).get("quotaShareUtilization")
    if utilization is None:
        return None
    return {
        entry.get("quotaShareName", ""): ",".join(
            f"{u.get('capacityUnit')}={number(u.get('quantity'))}"
            for u in entry.get("capacityUsage") or []
        )
        for entry in utilization.get("topCapacityUtilization") or []
    }


def sharing_text(share: dict[str, Any]) -> tuple[str, str]:
    config = share.get("resourceSharingConfiguration") or {}
    limit = config.get("borrowLimit")
    if config.get("strategy") != "LEND_AND_BORROW":
        limit_text = ""
    else:
        limit_text = "unlimited" if limit in (None, -1) else f"{limit} %"
    return config.get("strategy", ""), limit_text


def list_shares(args: argparse.Namespace, ctx: Context) -> int:
    body = {"jobQueue": args.queue}
    shares = list(ctx.client.paginate("ListQuotaShares", body, "quotaShares"))
    if ctx.json_output:
        ctx.emit_json({"quotaShares": shares, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    usage = usage_by_share(ctx, args.queue)
    rows = []
    for share in shares:
        name = share.get("quotaShareName", "")
        strategy_text, limit_text = sharing_text(share)
        preemption = (share.get("preemptionConfiguration") or {}).get("inSharePreemption", "")
        in_use = "" if usage is None else usage.get(name, "0")
        row = [name, share.get("state", ""), quota_text(share.get("capacityLimits")), in_use]
        rows.append(row + [strategy_text, limit_text, preemption])
    headers = ["NAME", "STATE", "QUOTA", "IN USE", "STRATEGY", "BORROW LIMIT", "IN-SHARE PREEMPT"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK


def describe(arns: list[str], ctx: Context) -> int:
    shares = [ctx.client.call("DescribeQuotaShare", {"quotaShareArn": arn}) for arn in arns]
    if ctx.json_output:
        ctx.emit_json({"quotaShares": shares})
        return EXIT_OK
    from hpcbatch.cli import render

    blocks = []
    for share in shares:
        strategy_text, limit_text = sharing_text(share)
        preemption = share.get("preemptionConfiguration") or {}
        tags = share.get("tags") or {}
        blocks.append(
            render.fields(
                [
                    ("name", share.get("quotaShareName", "")),
                    ("arn", share.get("quotaShareArn", "")),
                    ("queue", render.short_name(share.get("jobQueueArn"))),
                    ("state", f"{share.get('state', '')} ({share.get('status', '')})"),
                    ("quota", quota_text(share.get("capacityLimits"))),
                    ("strategy", strategy_text),
                    ("borrow limit", limit_text),
                    ("in-share preemption", preemption.get("inSharePreemption", "")),
                    ("tags", " ".join(f"{k}={v}" for k, v in sorted(tags.items()))),
                ]
            )
        )
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return EXIT_OK
