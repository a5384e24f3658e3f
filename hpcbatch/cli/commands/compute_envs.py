"""``hpcbatch compute-environments`` (alias ``ces``): list, create, update, delete.

A **compute environment** is a pool of nodes of one hpcbatch *kind*: LOCAL (this machine),
SSH (hosts listed in the head's config) or SLURM (an existing Slurm cluster's partitions, its
jobs submitted with sbatch: docs/slurm.md). AWS's CreateComputeEnvironment only carries
``computeResources`` for MANAGED
environments, so hpcbatch's kinds travel as ``type: MANAGED`` with
``computeResources.type: <KIND>``. AWS refuses to delete an ENABLED environment, so
``delete --force`` disables it first.
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
    parser = sub.add_parser(
        "compute-environments",
        aliases=["ces"],
        parents=[common],
        help="manage compute environments",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[common], help="list compute environments (default)"
    )
    listing.add_argument("names", nargs="*", metavar="NAME")
    create = actions.add_parser("create", parents=[common], help="create a compute environment")
    create.add_argument("name", metavar="NAME")
    create.add_argument(
        "--kind",
        type=str.upper,
        default="LOCAL",
        help="LOCAL (default), SSH (hosts from --pool), SLURM (--partition, --account, --qos; "
        "--max-vcpus caps its jobs in Slurm) or UNMANAGED (hosts from `nodes add`)",
    )
    create.add_argument(
        "--partition",
        action="append",
        dest="partitions",
        metavar="NAME",
        help="a SLURM CE's Slurm partition (computeResources.instanceTypes; repeat for more)",
    )
    create.add_argument("--account", help="a SLURM CE's Slurm account (tag slurm:account)")
    create.add_argument("--qos", help="a SLURM CE's Slurm QOS (tag slurm:qos)")
    update = actions.add_parser("update", parents=[common], help="change a compute environment")
    update.add_argument("name", metavar="NAME")
    for target in (create, update):
        target.add_argument("--state", type=_args.state, help="ENABLED or DISABLED")
        target.add_argument(
            "--max-vcpus",
            type=_args.non_negative_int,
            metavar="N",
            help="computeResources.maxvCpus",
        )
        for bound in ("min", "desired"):
            target.add_argument(
                f"--{bound}-vcpus",
                type=_args.non_negative_int,
                metavar="N",
                help=f"computeResources.{bound}vCpus",
            )
        target.add_argument(
            "--pool",
            action="append",
            dest="pools",
            metavar="POOL",
            help="an SSH CE's host pool (computeResources.instanceTypes; repeat for more)",
        )
    delete = actions.add_parser("delete", parents=[common], help="delete a compute environment")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--force", action="store_true", help="disable it first")
    parser.set_defaults(func=run, action=None, names=[])


def _bounds(args: argparse.Namespace) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for arg, member in (("min_vcpus", "minvCpus"), ("max_vcpus", "maxvCpus")):
        if getattr(args, arg) is not None:
            resources[member] = getattr(args, arg)
    if args.desired_vcpus is not None:
        resources["desiredvCpus"] = args.desired_vcpus
    if args.pools:
        resources["instanceTypes"] = args.pools
    return resources


def _slurm(args: argparse.Namespace) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if args.partitions:
        resources["instanceTypes"] = args.partitions
    tags = {f"slurm:{key}": getattr(args, key) for key in ("account", "qos") if getattr(args, key)}
    if tags:
        resources["tags"] = tags
    return resources


def create_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "UNMANAGED":
        body: dict[str, Any] = {"computeEnvironmentName": args.name, "type": "UNMANAGED"}
    else:
        body = {
            "computeEnvironmentName": args.name,
            "type": "MANAGED",
            "computeResources": {"type": args.kind, **_bounds(args), **_slurm(args)},
        }
    if args.state:
        body["state"] = args.state
    return body


def update_request(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"computeEnvironment": args.name}
    if args.state:
        body["state"] = args.state
    resources = _bounds(args)
    if resources:
        body["computeResources"] = resources
    return body


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "create":
        reply = ctx.client.call("CreateComputeEnvironment", create_request(args))
    elif args.action == "update":
        reply = ctx.client.call("UpdateComputeEnvironment", update_request(args))
    elif args.action == "delete":
        if args.force:
            ctx.client.call(
                "UpdateComputeEnvironment", {"computeEnvironment": args.name, "state": "DISABLED"}
            )
        reply = ctx.client.call("DeleteComputeEnvironment", {"computeEnvironment": args.name})
    else:
        return list_ces(args, ctx)
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(f"{args.action}d compute environment {args.name}\n")
    return EXIT_OK


def list_ces(args: argparse.Namespace, ctx: Context) -> int:
    body: dict[str, Any] = {"computeEnvironments": args.names} if args.names else {}
    ces = list(ctx.client.paginate("DescribeComputeEnvironments", body, "computeEnvironments"))
    if ctx.json_output:
        ctx.emit_json({"computeEnvironments": ces, "nextToken": None})
        return EXIT_OK
    from hpcbatch.cli import render

    rows = []
    for ce in ces:
        resources = ce.get("computeResources") or {}
        max_vcpus = resources.get("maxvCpus")
        rows.append(
            [
                ce.get("computeEnvironmentName", ""),
                resources.get("type") or ce.get("type", ""),
                ce.get("state", ""),
                ce.get("status", ""),
                "" if max_vcpus is None else str(max_vcpus),
                render.truncate(ce.get("statusReason"), REASON_WIDTH),
            ]
        )
    headers = ["NAME", "KIND", "STATE", "STATUS", "MAX VCPUS", "REASON"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK
