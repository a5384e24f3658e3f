"""``hpcbatch dev-cluster``: N compute hosts on this machine, each a network namespace with
its own sshd, to try hpcbatch or test it without spare machines (root, Linux).

``up`` prints the hosts and a head configuration snippet for an SSH compute environment (also
written to DIR/head-ce.toml); ``down`` removes everything ``up`` made; ``status`` shows each
host. The work is in :mod:`hpcbatch.devcluster`, imported only when this command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpcbatch.cli.context import EXIT_OK, Context, warn

if TYPE_CHECKING:
    from hpcbatch.devcluster import DevCluster

DIR_ENV = "HPCBATCH_DEVCLUSTER_DIR"  # also in hpcbatch.devcluster (not imported here: speed)
DEFAULT_DIR = "/var/lib/hpcbatch-devcluster"  # root's alone; hpcbatch.devcluster.DEFAULT_DIR
DEFAULT_DISK_MIB = 2048  # hpcbatch.devcluster.disks.DEFAULT_MIB (not imported here: speed)
EXIT_FAILED = 1

EXIT_CODES = """\
exit codes:
  0  ok
  1  the dev cluster could not be built, found or removed (the reason is on stderr);
     for status: a host's sshd is not running or does not answer, or its disk is not mounted
  2  usage error"""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "dev-cluster",
        help="compute hosts on this machine (network namespaces + sshd), for trying and tests",
        description="Build N compute hosts on this machine, each a network namespace with its "
        "own sshd (root, Linux); remove them with `down`.",
        epilog=EXIT_CODES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", parents=[common], help="build the hosts", epilog=EXIT_CODES)
    up.add_argument("--hosts", "-n", type=int, default=4, help="how many (default: 4)")
    up.add_argument(
        "--prefix", help="name prefix of namespaces and links (default: hb + 4 random hex digits)"
    )
    up.add_argument(
        "--disk-mib",
        type=int,
        default=DEFAULT_DISK_MIB,
        metavar="MIB",
        help="each host's own disk: a sparse ext4 image of this size, loop-mounted where its "
        f"agent keeps its state (default: {DEFAULT_DISK_MIB}; 0: state on the cluster's "
        "filesystem)",
    )
    down = actions.add_parser("down", parents=[common], help="remove it all", epilog=EXIT_CODES)
    status = actions.add_parser(
        "status", parents=[common], help="show each host", epilog=EXIT_CODES
    )
    for action in (up, down, status):
        action.add_argument(
            "--dir",
            "-d",
            type=Path,
            metavar="DIR",
            help=f"the cluster's directory (default: ${DIR_ENV}, else {DEFAULT_DIR})",
        )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.devcluster import DevCluster, DevClusterError

    base_dir = args.dir or Path(os.environ.get(DIR_ENV) or DEFAULT_DIR)
    try:
        if args.action == "up":
            cluster = DevCluster.up(
                base_dir, hosts=args.hosts, prefix=args.prefix, disk_mib=args.disk_mib
            )
            report_up(cluster, ctx)
            return EXIT_OK
        if args.action == "down" and not (base_dir / "cluster.json").exists():
            sys.stdout.write(f"no dev cluster in {base_dir}: nothing to remove\n")
            return EXIT_OK
        cluster = DevCluster.load(base_dir)
        if args.action == "down":
            cluster.down()
            sys.stdout.write(f"dev cluster {cluster.prefix} removed from {cluster.base_dir}\n")
            return EXIT_OK
        return report_status(cluster, ctx)
    except DevClusterError as exc:
        warn(f"error: {exc.message}")
        return EXIT_FAILED


def report_up(cluster: DevCluster, ctx: Context) -> None:
    if ctx.json_output:
        ctx.emit_json(describe(cluster))
        return
    from hpcbatch.cli import render

    rows = [[h.name, h.address, str(h.port), h.user, str(h.sshd_pid)] for h in cluster.hosts]
    out = sys.stdout
    out.write(f"dev cluster {cluster.prefix} up: subnet {cluster.subnet}, dir {cluster.base_dir}\n")
    out.write(render.table(["HOST", "ADDRESS", "PORT", "USER", "SSHD PID"], rows) + "\n\n")
    d = cluster.descriptor
    if d.disk_problem:
        warn(
            f"warning: the hosts keep their state on {cluster.base_dir}'s filesystem, "
            f"{d.disk_problem}"
        )
    elif d.disk_mib:
        out.write(f"each host has its own {d.disk_mib} MiB ext4 disk (sparse image, loop-mounted) ")
        out.write("holding its agent's state dir\n\n")
    out.write(f"ssh: ssh -F /dev/null -i {cluster.key_path} -o UserKnownHostsFile=")
    out.write(f"{cluster.known_hosts_path} root@{cluster.hosts[0].address} hostname\n\n")
    out.write(f"head configuration (also in {cluster.base_dir / 'head-ce.toml'}):\n\n")
    out.write(cluster.head_config() + "\n")
    out.write(f"remove it all with: hpcbatch dev-cluster down --dir {cluster.base_dir}\n")


def report_status(cluster: DevCluster, ctx: Context) -> int:
    hosts = cluster.status()
    if ctx.json_output:
        ctx.emit_json({**describe(cluster), "hosts": hosts})
    else:
        from hpcbatch.cli import render

        rows = [
            [
                h["name"],
                h["namespace"],
                h["address"],
                str(h["sshd_pid"]),
                yes_no(h["alive"]),
                yes_no(h["reachable"]),
                h["link"],
                h["disk"],
            ]
            for h in hosts
        ]
        headers = ["HOST", "NAMESPACE", "ADDRESS", "SSHD PID", "ALIVE", "REACHABLE", "LINK", "DISK"]
        sys.stdout.write(f"dev cluster {cluster.prefix}: subnet {cluster.subnet}\n")
        sys.stdout.write(render.table(headers, rows) + "\n")
    healthy = all(h["alive"] and h["reachable"] and h["disk"] != "missing" for h in hosts)
    return EXIT_OK if healthy else EXIT_FAILED


def describe(cluster: DevCluster) -> dict[str, Any]:
    return {
        "prefix": cluster.prefix,
        "subnet": cluster.subnet,
        "dir": str(cluster.base_dir),
        "key": str(cluster.key_path),
        "known_hosts": str(cluster.known_hosts_path),
        "disk_mib": cluster.descriptor.disk_mib if not cluster.descriptor.disk_problem else 0,
        "disk_problem": cluster.descriptor.disk_problem,
        "hosts": [
            {
                "name": h.name,
                "namespace": h.namespace,
                "address": h.address,
                "port": h.port,
                "user": h.user,
                "state_dir": str(h.agent_state_dir),
                "disk_image": None if h.disk_image is None else str(h.disk_image),
                "sshd_pid": h.sshd_pid,
            }
            for h in cluster.hosts
        ],
    }


def yes_no(value: bool) -> str:
    return "yes" if value else "no"
