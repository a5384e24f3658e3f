"""Entry point of the ``hpcbatch`` command: parse, dispatch, map failures to exit codes.

Everything after the first ``--`` is a job's command line (``submit``, ``job-definitions
register``) and is split off before argparse sees it, so a command's own flags (``-n``, ``-v``)
are never mistaken for ours. The global options (``--endpoint``, ``--output``, ``--profile``,
``--region``, ``--ca-bundle``) are accepted before or after the command name; the endpoint's
default is resolved here, once (credentials only when a request is about to be sent).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from hpcbatch.cli.context import (
    EXIT_CLIENT_ERROR,
    EXIT_CODES_HELP,
    EXIT_OK,
    EXIT_SERVER_ERROR,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Context,
    warn,
)

Handler = Callable[[argparse.Namespace, Context], int]

DEFAULT_UNREACHABLE_HINT = (
    "hint: by default the CLI calls the head's socket /run/hpcbatch/head.sock, or where there "
    "is none 127.0.0.1:7650; for a head elsewhere give --endpoint http(s)://HOST:PORT or set "
    "HPCBATCH_ENDPOINT"
)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's own, given a width up front: left to itself it imports shutil (which pulls
    in bz2 and lzma, ~3 ms) merely to ask the terminal's size, once per parser."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, width or terminal_width() - 2)


def terminal_width() -> int:
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError, AttributeError):  # not a terminal, or stdout replaced
        return 80


class Parser(argparse.ArgumentParser):
    """Every parser, subcommands' included (argparse makes those of type(self)), gets our
    formatter and the exit codes in its --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("epilog", EXIT_CODES_HELP)
        super().__init__(*args, **kwargs)


def common_options() -> argparse.ArgumentParser:
    # SUPPRESS defaults: a subcommand's parser must not overwrite a value given before it.
    common = Parser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument(
        "--endpoint",
        "-e",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="head endpoint: unix:///PATH, http://HOST:PORT or https://HOST:PORT "
        "(default: $HPCBATCH_ENDPOINT, else unix:///run/hpcbatch/head.sock)",
    )
    group.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="sign http(s) requests with this profile's keys from ~/.aws/credentials "
        "(default: $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else $AWS_PROFILE, else default)",
    )
    group.add_argument(
        "--region",
        default=argparse.SUPPRESS,
        metavar="REGION",
        help="the head's signing region (default: $HPCBATCH_REGION, $AWS_REGION, "
        "$AWS_DEFAULT_REGION, the profile's region, else local)",
    )
    group.add_argument(
        "--ca-bundle",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="CA certificates to verify an https head with (default: $AWS_CA_BUNDLE, "
        "the profile's ca_bundle, else the system's)",
    )
    group.add_argument(
        "--output",
        "-o",
        choices=("table", "json"),
        default=argparse.SUPPRESS,
        help="table for people (default) or json: the raw API response",
    )
    group.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        default=argparse.SUPPRESS,
        help="the same as --output json",
    )
    return common


GLOBAL_OPTIONS_WITH_VALUE = (
    "--endpoint",
    "-e",
    "--output",
    "-o",
    "--profile",
    "--region",
    "--ca-bundle",
)


def command_name(argv: list[str]) -> str | None:
    """The command word, skipping the global options (and their values) that may precede it."""
    tokens = iter(argv)
    for token in tokens:
        if token in GLOBAL_OPTIONS_WITH_VALUE:
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or when ``command`` is known only the part that parses it."""
    from hpcbatch.cli.commands import COMMAND_MODULES, MODULE_OF

    modules = (MODULE_OF[command],) if command in MODULE_OF else COMMAND_MODULES

    common = common_options()
    parser = Parser(
        prog="hpcbatch",
        parents=[common],
        description="hpcbatch: batch jobs on your own machines, the AWS Batch way.",
        epilog=EXIT_CODES_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        module = importlib.import_module(f"hpcbatch.cli.commands.{name}")
        module.register(sub, common)
    return parser


def split_command_line(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1 :]
    return argv, []


def parse(argv: list[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code argparse chose (help: 0, usage error: 2)."""
    ours, job_command = split_command_line(argv)
    parser = build_parser(command_name(ours))
    try:
        args = parser.parse_args(ours)
        if job_command and not getattr(args, "accepts_command", False):
            parser.error(f"'{args.command}' takes no command after '--'")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    args.command_argv = job_command
    return args


def make_context(args: argparse.Namespace) -> Context | int:
    from hpcbatch.cli.client import ENDPOINT_ENV, default_endpoint

    endpoint = getattr(args, "endpoint", None) or os.environ.get(ENDPOINT_ENV) or default_endpoint()
    if args.command != "head":
        from hpcbatch.cli.client import EndpointError, parse_endpoint

        try:
            parse_endpoint(endpoint)
        except EndpointError as exc:
            warn(f"hpcbatch: error: {exc}")
            return EXIT_USAGE
    return Context(
        endpoint=endpoint,
        json_output=getattr(args, "output", "table") == "json",
        profile=getattr(args, "profile", None),
        region=getattr(args, "region", None),
        ca_bundle=getattr(args, "ca_bundle", None),
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    if isinstance(args, int):
        return args
    ctx = make_context(args)
    if isinstance(ctx, int):
        return ctx
    handler: Handler = args.func
    try:
        return dispatch(handler, args, ctx)
    finally:
        ctx.close()


def dispatch(handler: Handler, args: argparse.Namespace, ctx: Context) -> int:
    from hpcbatch.cli.client import DEFAULT_ENDPOINT, FALLBACK_ENDPOINT, HeadUnreachableError
    from hpcbatch.cli.credentials import CredentialsError
    from hpcbatch.errors import ClientError, HpcbatchError

    try:
        return handler(args, ctx)
    except CredentialsError as exc:
        warn(f"hpcbatch: error: {exc.message}")
        return EXIT_USAGE
    except HeadUnreachableError as exc:
        warn(f"error: {exc.message}")
        if exc.endpoint in (DEFAULT_ENDPOINT, FALLBACK_ENDPOINT):
            warn(DEFAULT_UNREACHABLE_HINT)
        return EXIT_UNREACHABLE
    except ClientError as exc:
        warn(f"error: {exc.message}")
        return EXIT_CLIENT_ERROR
    except HpcbatchError as exc:
        warn(f"error: the head failed: {exc.message}")
        return EXIT_SERVER_ERROR
    except KeyboardInterrupt:
        return 130  # the shell's convention for SIGINT
    except BrokenPipeError:
        # `hpcbatch jobs | head` closed our stdout: not an error; stop Python complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
