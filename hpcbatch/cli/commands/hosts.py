"""``hpcbatch hosts``: admin commands on every SSH host of the head's configuration at once.

It reads the same configuration file as ``hpcbatch head --config`` (its
``[[compute_environments]]`` hosts, with their keys and known_hosts) and talks to the hosts
directly over SSH, in parallel (fabric; see :mod:`hpcbatch.transport.fanout`), not through the
head. ``list`` shows them, ``exec`` runs a command on each, ``stop-agents`` stops the agents a
head leaves running when it stops (their jobs keep running unless ``--kill-jobs``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpcbatch.cli.context import EXIT_OK, Context, warn

if TYPE_CHECKING:
    from hpcbatch.transport.fanout import Outcome
    from hpcbatch.transport.ssh import SshHost

CONFIG_ENV = "HPCBATCH_CONFIG"
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2

EXIT_CODES = """\
exit codes:
  0  ok on every host
  1  the command failed, or could not run, on at least one host (each says why)
  2  usage error, or a configuration file that cannot be read or is invalid"""


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "hosts",
        help="run admin commands on every SSH host of the head's configuration",
        description="Admin commands on the SSH hosts listed in the head's configuration file, "
        "run on all of them at once over SSH (not through the head).",
        epilog=EXIT_CODES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", parents=[common], help="show the hosts", epilog=EXIT_CODES)
    run_cmd = actions.add_parser(
        "exec",
        parents=[common],
        help="run a command on each host: hpcbatch hosts exec -- uptime",
        description="Run a shell command line on each host (the words after -- are joined "
        "with spaces, as ssh does). Each output line is prefixed with the host's name.",
        epilog=EXIT_CODES,
    )
    run_cmd.add_argument("--timeout", type=float, metavar="S", help="per host, in seconds")
    stop = actions.add_parser(
        "stop-agents",
        parents=[common],
        help="stop the hpcbatch agent on each host (jobs keep running)",
        epilog=EXIT_CODES,
    )
    stop.add_argument(
        "--kill-jobs", action="store_true", help="kill each agent's jobs before it stops"
    )
    for action in (listing, run_cmd, stop):
        action.add_argument(
            "--config",
            type=Path,
            metavar="FILE.toml",
            help=f"the head's configuration file (default: ${CONFIG_ENV})",
        )
        action.add_argument("--ce", metavar="NAME", help="only this compute environment's hosts")
        action.add_argument(
            "--host", action="append", metavar="NAME", help="only this host (repeatable)"
        )
    run_cmd.set_defaults(accepts_command=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    hosts = _chosen_hosts(args)
    if isinstance(hosts, int):
        return hosts
    if args.action == "list":
        return _list(hosts, ctx)
    from hpcbatch.transport import fanout

    if args.action == "exec":
        if not args.command_argv:
            warn("error: give the command after --: hpcbatch hosts exec -- uptime")
            return EXIT_BAD_CONFIG
        outcomes = fanout.run_everywhere(hosts, " ".join(args.command_argv), args.timeout)
    else:
        commands = [fanout.stop_agent_command(host, args.kill_jobs) for host in hosts]
        outcomes = fanout.run_each(hosts, commands)
    return _report(outcomes, ctx)


def _chosen_hosts(args: argparse.Namespace) -> list[SshHost] | int:
    from hpcbatch.errors import HpcbatchError
    from hpcbatch.head.config import load_config

    path = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is None:
        warn(f"error: --config: give the head's configuration file (or set ${CONFIG_ENV})")
        return EXIT_BAD_CONFIG
    try:
        config = load_config(path)
    except HpcbatchError as error:
        warn(f"error: {error}")
        return EXIT_BAD_CONFIG
    ces = [ce for ce in config.compute_environments if args.ce in (None, ce.name)]
    if args.ce is not None and not ces:
        warn(f"error: --ce: no compute environment {args.ce!r} in {path}")
        return EXIT_BAD_CONFIG
    hosts = [host for ce in ces for host in ce.hosts]
    if args.host:
        unknown = sorted(set(args.host) - {host.name for host in hosts})
        if unknown:
            warn(f"error: --host: no host {', '.join(unknown)} in {path}")
            return EXIT_BAD_CONFIG
        hosts = [host for host in hosts if host.name in args.host]
    if not hosts:
        warn(f"error: no SSH hosts in {path}")
        return EXIT_BAD_CONFIG
    return hosts


def _list(hosts: list[SshHost], ctx: Context) -> int:
    rows = [
        [h.name, f"{h.user}@{h.address}:{h.port}", str(h.key), h.state_dir, str(h.known_hosts)]
        for h in hosts
    ]
    if ctx.json_output:
        keys = ("name", "address", "key", "stateDir", "knownHosts")
        ctx.emit_json({"hosts": [dict(zip(keys, row, strict=True)) for row in rows]})
        return EXIT_OK
    from hpcbatch.cli import render

    headers = ["NAME", "ADDRESS", "KEY", "STATE DIR", "KNOWN HOSTS"]
    sys.stdout.write(render.table(headers, rows) + "\n")
    return EXIT_OK


def _report(outcomes: list[Outcome], ctx: Context) -> int:
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if ctx.json_output:
        ctx.emit_json({"hosts": [_as_json(outcome) for outcome in outcomes]})
    else:
        for outcome in outcomes:
            for stream, text in ((sys.stdout, outcome.stdout), (sys.stderr, outcome.stderr)):
                for line in text.splitlines():
                    stream.write(f"{outcome.host}: {line}\n")
        for outcome in failed:
            why = outcome.error or f"exit {outcome.exit_code}"
            warn(f"{outcome.host}: FAILED: {why}")
        ok = len(outcomes) - len(failed)
        warn(f"ok on {ok} of {len(outcomes)} host{'s' if len(outcomes) != 1 else ''}")
    return EXIT_FAILED if failed else EXIT_OK


def _as_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "host": outcome.host,
        "exitCode": outcome.exit_code,
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "error": outcome.error,
    }
