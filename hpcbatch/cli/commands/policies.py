"""``hpcbatch policies`` (alias ``scheduling-policies``): scheduling policies.

A **fair-share** policy makes a job queue that names it (``queues create --policy``) a
fair-share queue (docs/fairshare.md): ``shareDecaySeconds``, ``computeReservation`` and a
**share distribution**, share identifiers (a trailing ``*`` makes a prefix) with a weight
factor each: a LOWER factor gets MORE capacity. A **quota-share** policy (``create
--quota-share``: AWS's ``quotaSharePolicy``, FIFO) makes it a queue of quota shares
(docs/quota-shares.md); a policy's kind never changes. The API names policies by ARN only; the
CLI takes a name too and finds its ARN with ListSchedulingPolicies.

``update`` changes only what its flags name: it reads the policy and sends it whole, because
UpdateSchedulingPolicy replaces the ``fairsharePolicy`` (one sent without it would drop it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hpcbatch.cli.commands import _args
from hpcbatch.cli.context import EXIT_OK, EXIT_USAGE, Context, warn

DESCRIBE_BATCH = 100  # DescribeSchedulingPolicies takes at most 100 ARNs
DEFAULT_WEIGHT = 1.0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "policies",
        aliases=["scheduling-policies"],
        parents=[common],
        help="manage scheduling policies (fair share, quota shares)",
        description="A fair-share policy makes the queues that name it fair-share queues: "
        "jobs are served by share (SubmitJob's shareIdentifier) by weight, not first come "
        "first served. A LOWER weight factor gets MORE capacity. A quota-share policy "
        "(--quota-share) makes them queues of quota shares.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", parents=[common], help="list scheduling policies (default)")
    describe = actions.add_parser(
        "describe", parents=[common], help="show policies, their shares and the queues using them"
    )
    describe.add_argument("refs", nargs="+", metavar="NAME|ARN")
    create = actions.add_parser("create", parents=[common], help="create a scheduling policy")
    create.add_argument("name", metavar="NAME")
    _args.add_from_json(create, "CreateSchedulingPolicy")
    create.add_argument(
        "--quota-share",
        action="store_true",
        help="a quota-share policy (quotaSharePolicy, FIFO) instead of fair share: its queue "
        "takes quota shares (hpcbatch quota-shares)",
    )
    update = actions.add_parser(
        "update", parents=[common], help="change a policy (only what the flags name)"
    )
    update.add_argument("ref", metavar="NAME|ARN")
    _args.add_from_json(update, "UpdateSchedulingPolicy")
    update.add_argument(
        "--remove-share",
        action="append",
        default=[],
        metavar="ID",
        help="drop this entry of the share distribution (repeatable)",
    )
    for target in (create, update):
        target.add_argument(
            "--share-decay-seconds",
            type=_args.non_negative_int,
            metavar="S",
            help="half-life of past usage, 0-604800 (0: AWS's default window, 600 s)",
        )
        target.add_argument(
            "--compute-reservation",
            type=_args.non_negative_int,
            metavar="PCT",
            help="0-99: capacity kept for shares with no running job",
        )
        target.add_argument(
            "--share",
            type=share_weight,
            action="append",
            default=[],
            metavar="ID[=WEIGHT]",
            help="a share and its weight factor (default 1; lower gets more); ID may end in * "
            "for every share starting with it (repeatable; on update, replaces ID's entry)",
        )
    delete = actions.add_parser("delete", parents=[common], help="delete a scheduling policy")
    delete.add_argument("ref", metavar="NAME|ARN")
    parser.set_defaults(func=run, action=None)


def share_weight(text: str) -> tuple[str, float | None]:
    identifier, sep, weight = text.partition("=")
    if not identifier:
        raise argparse.ArgumentTypeError(f"expected ID[=WEIGHT], got {text!r}")
    if not sep:
        return identifier, None
    try:
        return identifier, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected ID=WEIGHT with a number as WEIGHT, got {text!r}"
        ) from None


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "create":
        return create(args, ctx)
    if args.action == "update":
        return update(args, ctx)
    if args.action == "delete":
        arn = resolve_arn(ctx, args.ref)
        reply = ctx.client.call("DeleteSchedulingPolicy", {"arn": arn})
        return done(ctx, reply, f"deleted scheduling policy {short(arn)}")
    if args.action == "describe":
        return describe(args, ctx)
    return list_policies(ctx)


def has_policy_flags(args: argparse.Namespace) -> bool:
    return bool(
        args.share
        or args.share_decay_seconds is not None
        or args.compute_reservation is not None
        or getattr(args, "remove_share", None)
    )


def merged_fairshare(args: argparse.Namespace, current: dict[str, Any]) -> dict[str, Any]:
    """``current`` (a fairsharePolicy, maybe empty) with the flags applied over it."""
    policy = dict(current)
    if args.share_decay_seconds is not None:
        policy["shareDecaySeconds"] = args.share_decay_seconds
    if args.compute_reservation is not None:
        policy["computeReservation"] = args.compute_reservation
    if args.share or getattr(args, "remove_share", None):
        entries = {e["shareIdentifier"]: e for e in policy.get("shareDistribution") or []}
        for identifier in getattr(args, "remove_share", None) or []:
            entries.pop(identifier, None)
        for identifier, weight in args.share:
            entry: dict[str, Any] = {"shareIdentifier": identifier}
            if weight is not None:
                entry["weightFactor"] = weight
            entries[identifier] = entry
        policy["shareDistribution"] = list(entries.values())
    return policy


def create(args: argparse.Namespace, ctx: Context) -> int:
    body = dict(args.from_json or {})
    body["name"] = args.name
    if args.quota_share:
        if has_policy_flags(args):
            warn("error: --quota-share takes none of the fair-share flags")
            return EXIT_USAGE
        body["quotaSharePolicy"] = {"idleResourceAssignmentStrategy": "FIFO"}
    if has_policy_flags(args) or "quotaSharePolicy" not in body:
        body["fairsharePolicy"] = merged_fairshare(args, body.get("fairsharePolicy") or {})
    reply = ctx.client.call("CreateSchedulingPolicy", body)
    return done(ctx, reply, f"created scheduling policy {args.name} ({reply.get('arn', '')})")


def update(args: argparse.Namespace, ctx: Context) -> int:
    if args.from_json is None and not has_policy_flags(args):
        warn(
            "error: update needs --share, --remove-share, --share-decay-seconds, "
            "--compute-reservation or --from-json"
        )
        return EXIT_USAGE
    arn = resolve_arn(ctx, args.ref)
    body = dict(args.from_json or {})
    body["arn"] = arn
    if has_policy_flags(args):
        current = body.get("fairsharePolicy")
        if current is None:
            found = describe_arns(ctx, [arn])
            current = found[0].get("fairsharePolicy") if found else None
        body["fairsharePolicy"] = merged_fairshare(args, current or {})
    reply = ctx.client.call("UpdateSchedulingPolicy", body)
    return done(ctx, reply, f"updated scheduling policy {short(arn)}")


def done(ctx: Context, reply: dict[str, Any], message: str) -> int:
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(message + "\n")
    return EXIT_OK


def short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def all_arns(ctx: Context) -> list[str]:
    return [
        p["arn"] for p in ctx.client.paginate("ListSchedulingPolicies", {}, "schedulingPolicies")
    ]


def resolve_arn(ctx: Context, ref: str) -> str:
    """An ARN as given; a name looked up among the head's policies (ClientError if none)."""
    if ref.startswith("arn:"):
        return ref
    for arn in all_arns(ctx):
        if short(arn) == ref:
            return arn
    from hpcbatch.errors import ClientError

    raise ClientError(f"no scheduling policy named {ref!r} ('hpcbatch policies' lists them)")


def describe_arns(ctx: Context, arns: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for start in range(0, len(arns), DESCRIBE_BATCH):
        chunk = arns[start : start + DESCRIBE_BATCH]
        reply = ctx.client.call("DescribeSchedulingPolicies", {"arns": chunk})
        found.extend(reply.get("schedulingPolicies") or [])
    return found


def shares_text(policy: dict[str, Any]) -> str:
    """``chem=0.5 bio*=1``: the distribution in one cell."""
    fairshare = policy.get("fairsharePolicy") or {}
    return " ".join(
        f"{e.get('shareIdentifier')}={weight(e.get('weightFactor'))}"
        for e in fairshare.get("shareDistribution") or []
    )


def weight(value: Any) -> str:
    from hpcbatch.cli.render import number

    return number(DEFAULT_WEIGHT if value is None else value)


def list_policies(ctx: Context) -> int:
    policies = describe_arns(ctx, all_arns(ctx))
    if ctx.json_output:
        ctx.emit_json({"schedulingPolicies": policies, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = []
    for policy in policies:
        fairshare = policy.get("fairsharePolicy") or {}
        kind = "fair share" if "fairsharePolicy" in policy else ""
        if "quotaSharePolicy" in policy:
            kind = "quota share"
        rows.append(
            [
                policy.get("name", ""),
                kind,
                render.number(fairshare.get("shareDecaySeconds")),
                render.number(fairshare.get("computeReservation")),
                shares_text(policy),
            ]
        )
    headers = ["NAME", "KIND", "DECAY S", "RESERVE %", "SHARES (ID=WEIGHT; lower weight gets more)"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK


def describe(args: argparse.Namespace, ctx: Context) -> int:
    arns = [resolve_arn(ctx, ref) for ref in args.refs]
    policies = describe_arns(ctx, arns)
    missing = set(arns) - {policy.get("arn") for policy in policies}
    if missing:
        from hpcbatch.errors import ClientError

        # DescribeSchedulingPolicies leaves unknown ARNs out, as AWS does: say so
        raise ClientError(f"no scheduling policy {sorted(missing)[0]!r}")
    if ctx.json_output:
        ctx.emit_json({"schedulingPolicies": policies})
        return EXIT_OK
    queues = list(ctx.client.paginate("DescribeJobQueues", {}, "jobQueues"))
    blocks = [policy_block(policy, queues) for policy in policies]
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return EXIT_OK


def policy_block(policy: dict[str, Any], queues: list[dict[str, Any]]) -> str:
    from hpcbatch.cli import render

    fairshare = policy.get("fairsharePolicy") or {}
    decay = fairshare.get("shareDecaySeconds")
    users = [
        q.get("jobQueueName", "")
        for q in queues
        if q.get("schedulingPolicyArn") == policy.get("arn")
    ]
    lines = [
        ("name", policy.get("name", "")),
        ("arn", policy.get("arn", "")),
        ("share decay", "" if decay is None else f"{decay} s" + (" (600 s)" if decay == 0 else "")),
        ("compute reservation", render.number(fairshare.get("computeReservation")) + " %"),
        ("queues", ", ".join(users)),
        ("tags", " ".join(f"{k}={v}" for k, v in sorted((policy.get("tags") or {}).items()))),
    ]
    if "quotaSharePolicy" in policy:
        strategy = policy["quotaSharePolicy"].get("idleResourceAssignmentStrategy", "")
        lines.insert(4, ("quota share policy", strategy))
    text = render.fields(lines)
    entries = fairshare.get("shareDistribution") or []
    if entries:
        rows = [share_row(e) for e in entries]
        headers = ["SHARE", "WEIGHT FACTOR", "CAPACITY VS WEIGHT 1"]
        text += "\nshares (a share no entry matches has weight 1):\n"
        text += "\n".join("  " + line for line in render.table(headers, rows).splitlines())
    return text


def share_row(entry: dict[str, Any]) -> list[str]:
    factor = entry.get("weightFactor")
    factor = DEFAULT_WEIGHT if factor is None else float(factor)
    identifier = str(entry.get("shareIdentifier", ""))
    if identifier.endswith("*"):
        identifier += " (each share starting so)"
    relative = f"{1 / factor:.3g}x" if factor > 0 else ""
    return [identifier, weight(factor), relative]
