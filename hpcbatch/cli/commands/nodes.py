"""``hpcbatch nodes``: list compute nodes, drain one, resume one (hpcbatch's own routes).

A **drained** node takes no new attempts; DRAINING means it still runs some. Drain before
maintenance, resume after. The table shows use against capacity so a person sees where room is,
and, where nodes have them, each node's placement group (GROUP) and the address:port of its
agent's MPI launch server (LAUNCH), which a multi-node job's peers connect to.

Where nodes have GPUs, a second table lists each GPU: its node, index, id (the UUID jobs see in
``CUDA_VISIBLE_DEVICES``), model, memory, and whether it is free, in use (by which job) or out
of service (and why); the node table then says how each node keeps jobs to their own GPUs
(GPU ISOLATION: ``devices``, the job's cgroup denies the others; ``env``, only the variables).

AGENT is the build of each connected node's agent (``-`` while none is connected): the head
replaces an agent of another build than its own as it connects (transport/upgrade.py), so a
node whose agent could not be replaced says why in REASON.

``hpcbatch nodes add --ce NAME [user@]ADDRESS[:PORT]... --key PATH --known-hosts PATH`` (admins)
puts SSH hosts into an UNMANAGED compute environment, as the config's host tables would (the
head connects them, installs the agent, remembers them across restarts); ``--vcpus``,
``--memory-mib``, ``--state-dir``, ``--python``, ``--trust-on-first-use`` and ``--name`` (one
host) are the host table's settings. Paths are on the head's machine. ``hpcbatch nodes remove
NAME`` lets such a host go: it drains, its running jobs finish, then its agent is stopped.

A node whose host was removed from the head's config is **retiring** (STATE ``DRAINING
(retiring)``, REASON ``removed from the head's config``): its running jobs finish, then it leaves
the list and its compute environment (head/retire.py).
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any

from hpcbatch.cli.context import EXIT_OK, Context

REASON_WIDTH = 40


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser("nodes", parents=[common], help="list, drain and resume nodes")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", parents=[common], help="list nodes (default)")
    drain = actions.add_parser("drain", parents=[common], help="stop placing new jobs on a node")
    drain.add_argument("node", metavar="NAME")
    drain.add_argument("--reason", "-r", default="", help="why (shown in the node list)")
    resume = actions.add_parser("resume", parents=[common], help="place jobs on a node again")
    resume.add_argument("node", metavar="NAME")
    resume.add_argument("--reason", "-r", default="")
    add = actions.add_parser(
        "add", parents=[common], help="add SSH hosts to an UNMANAGED compute environment (admin)"
    )
    add.add_argument("hosts", metavar="[USER@]ADDRESS[:PORT]", nargs="+")
    add.add_argument("--ce", required=True, help="the UNMANAGED compute environment")
    add.add_argument("--key", required=True, help="private key (a path on the head's machine)")
    add.add_argument("--known-hosts", required=True, help="known_hosts file (on the head)")
    add.add_argument("--trust-on-first-use", action="store_true", help="record unknown keys")
    add.add_argument("--name", help="the node's name (one host only; default: its address)")
    add.add_argument("--vcpus", type=int, help="vCPUs it offers (default: all it has)")
    add.add_argument("--memory-mib", type=int, help="memory it offers (default: all it has)")
    add.add_argument("--state-dir", help="the agent's state directory on the host")
    add.add_argument("--python", help="the host's Python 3 (default: python3)")
    remove = actions.add_parser(
        "remove", parents=[common], help="let an added host go after its jobs (admin)"
    )
    remove.add_argument("node", metavar="NAME")
    parser.set_defaults(func=run, action=None)


def host_table(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    """``[user@]address[:port]`` plus the shared options, as the head's config host table."""
    user, at, rest = spec.rpartition("@")
    address, port = rest, None
    if rest.count(":") == 1:  # an IPv6 address has several colons and no port here
        address, _, port_text = rest.partition(":")
        if not port_text.isdigit():
            raise SystemExit(f"error: {spec}: the port after ':' must be a number")
        port = int(port_text)
    table: dict[str, Any] = {
        "name": args.name or address,
        "address": address,
        "key": args.key,
        "known_hosts": args.known_hosts,
    }
    optional = {
        "user": user if at else None,
        "port": port,
        "trust_on_first_use": args.trust_on_first_use or None,
        "vcpus": args.vcpus,
        "memory_mib": args.memory_mib,
        "state_dir": args.state_dir,
        "python": args.python,
    }
    table.update({k: v for k, v in optional.items() if v is not None})
    return table


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "add":
        if args.name and len(args.hosts) > 1:
            raise SystemExit("error: --name names one host; give one host with it")
        hosts = [host_table(spec, args) for spec in args.hosts]
        reply = ctx.client.post(
            "/hpcbatch/v1/nodes", {"computeEnvironment": args.ce, "hosts": hosts}
        )
        if ctx.json_output:
            ctx.emit_json(reply)
        else:
            for name in reply.get("added", []):
                sys.stdout.write(f"{name}: added to {args.ce} (connecting)\n")
        return EXIT_OK
    if args.action == "remove":
        name = urllib.parse.quote(args.node, safe="")
        reply = ctx.client.post(f"/hpcbatch/v1/nodes/{name}/remove", {})
        if ctx.json_output:
            ctx.emit_json(reply)
        else:
            sys.stdout.write(f"{args.node}: leaving once its jobs end\n")
        return EXIT_OK
    if args.action in ("drain", "resume"):
        name = urllib.parse.quote(args.node, safe="")
        reply = ctx.client.post(f"/hpcbatch/v1/nodes/{name}/{args.action}", {"reason": args.reason})
        if ctx.json_output:
            ctx.emit_json(reply)
        else:
            node = reply.get("node") or {}
            sys.stdout.write(f"{node.get('name', args.node)}: {node.get('state', '?')}\n")
        return EXIT_OK
    reply = ctx.client.get("/hpcbatch/v1/nodes")
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        nodes = reply.get("nodes", [])
        sys.stdout.write(render_nodes(nodes) + "\n")
        gpus = render_gpus(nodes)
        if gpus:
            sys.stdout.write("\n" + gpus + "\n")
        slurm = render_slurm(nodes)
        if slurm:
            sys.stdout.write("\n" + slurm + "\n")
    return EXIT_OK


def render_slurm(nodes: list[dict[str, Any]]) -> str:
    """A SLURM compute environment's partitions as Slurm reports them (sinfo), under the node
    that is its bridge; "" when no node is one."""
    from hpcbatch.cli import render

    parts = []
    for node in nodes:
        view = node.get("slurm")
        if view is None:
            continue
        rows = [
            [
                node.get("name", ""),
                n.get("name", ""),
                n.get("partition", ""),
                n.get("state", ""),
                str(n.get("vcpus", "")),
                str(n.get("memoryMiB", "")),
            ]
            for n in view.get("nodes", [])
        ]
        headers = ["BRIDGE", "SLURM NODE", "PARTITION", "STATE", "CPUS", "MEM MiB"]
        parts.append(render.table(headers, rows) if rows else f"{node.get('name')}: no nodes")
        if view.get("trouble"):
            parts.append(f"{node.get('name')}: Slurm does not answer: {view['trouble']}")
    return "\n".join(parts)


def render_nodes(nodes: list[dict[str, Any]]) -> str:
    from hpcbatch.cli import render

    now = render.now_ms()
    rows = [
        [
            node.get("name", ""),
            node.get("computeEnvironment", ""),
            node.get("state", "") + (" (retiring)" if node.get("retiring") else ""),
            f"{_num(node.get('allocatedVcpus'))}/{_num(node.get('vcpus'))}",
            f"{_num(node.get('allocatedMemoryMiB'))}/{_num(node.get('memoryMiB'))}",
            f"{_num(node.get('allocatedGpus'))}/{_num(node.get('gpus'))}",
            str(node.get("runningJobs", 0)),
            render.age(node.get("lastHeartbeatAt"), now),
            node.get("enforcement", ""),
            node.get("agentVersion") or "-",
            render.truncate(node.get("stateReason"), REASON_WIDTH),
        ]
        for node in nodes
    ]
    headers = [
        "NAME",
        "CE",
        "STATE",
        "VCPUS",
        "MEM MiB",
        "GPUS",
        "JOBS",
        "HEARTBEAT",
        "LIMITS",
        "AGENT",
        "REASON",
    ]
    for header, cell in _gang_columns(nodes) + _gpu_columns(nodes):
        headers.insert(-1, header)  # before REASON, which may be long
        for row, value in zip(rows, cell, strict=True):
            row.insert(-1, value)
    return render.table(headers, rows)


def _gang_columns(nodes: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """GROUP (placement group) and LAUNCH (address:port of the agent's MPI launch server),
    each only when some node has one: a cluster without them keeps its narrow table."""
    columns: list[tuple[str, list[str]]] = []
    if any(node.get("placementGroup") for node in nodes):
        columns.append(("GROUP", [node.get("placementGroup") or "-" for node in nodes]))
    if any(node.get("launchPort") for node in nodes):
        launch = [
            f"{node.get('address') or '?'}:{node['launchPort']}" if node.get("launchPort") else "-"
            for node in nodes
        ]
        columns.append(("LAUNCH", launch))
    return columns


def _gpu_columns(nodes: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    if not any(node.get("gpuDevices") for node in nodes):
        return []
    cells = [node.get("gpuIsolation", "-") if node.get("gpuDevices") else "-" for node in nodes]
    return [("GPU ISOLATION", cells)]


def render_gpus(nodes: list[dict[str, Any]]) -> str:
    """Every GPU of every node, and each node's word on its GPUs; "" when no node has any."""
    rows = []
    notes = []
    for node in nodes:
        name = node.get("name", "")
        for gpu in node.get("gpuDevices") or []:
            status = gpu.get("status", "")
            detail = gpu.get("jobId") or ""
            if status == "OUT_OF_SERVICE":
                detail = gpu.get("reason", "") + (f" (still held by {detail})" if detail else "")
            memory = gpu.get("memoryMiB")
            rows.append(
                [
                    name,
                    str(gpu.get("index", "")),
                    gpu.get("id", ""),
                    gpu.get("model") or "",
                    "" if memory is None else str(memory),
                    status,
                    detail,
                ]
            )
        for key in ("gpusReason", "gpuIsolationReason"):
            if node.get(key):
                notes.append(f"{name}: {node[key]}")
    if not rows and not notes:
        return ""
    from hpcbatch.cli import render

    headers = ["NODE", "GPU", "ID", "MODEL", "MEM MiB", "STATUS", "JOB / REASON"]
    text = render.table(headers, rows) if rows else "no GPUs"
    return "\n".join([text, *notes])


def _num(value: Any) -> str:
    """3.0 -> '3', 0.5 -> '0.5': vCPUs may be fractional, most are not."""
    if value is None:
        return "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
