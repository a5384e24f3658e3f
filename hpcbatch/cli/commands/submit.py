"""``hpcbatch submit``: SubmitJob, optionally waiting for the job to end.

``hpcbatch submit -- CMD ARGS...`` needs no job definition of its own: it submits the given
definition (``default`` unless ``--definition``) with ``containerOverrides.command``. Stdout
carries the job id alone, so ``id=$(hpcbatch submit -- ./run.sh)`` works; the name and the
queue go to stderr for people.

``hpcbatch submit --nodes N -- CMD`` submits a multi-node parallel job instead: the definition
is ``default-multinode`` unless ``--definition``. As with Slurm's batch script, CMD runs on the
main node (typically ``mpirun ...``), and every other node holds its allocation (``sleep
infinity``) for the ranks that MPI starts there through hpcbatch's launcher, until the main node
exits; ``--every-node`` runs CMD on every node instead (AWS's style). Both go as
``nodeOverrides``: ``numNodes: N`` and overrides per range, resources and environment on every
node.

The job runs in the directory ``hpcbatch submit`` was called from, as with ``sbatch``:
``--workdir DIR`` names another (a relative DIR is taken from the current directory), and
``--workdir attempt`` asks for the agent's private per-attempt directory instead (AWS's
behaviour; it is ``HPCBATCH_ATTEMPT_DIR`` either way). The directory rides in the
``x-hpcbatch-workdir`` header, percent-encoded, so the body stays what boto3 would send.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from hpcbatch.cli.commands import _args
from hpcbatch.cli.context import EXIT_CLIENT_ERROR, EXIT_OK, EXIT_USAGE, Context, warn

DEPENDENCY_TYPES = ("N_TO_N", "SEQUENTIAL")
DEFAULT_MULTINODE = "default-multinode"
WORKDIR_HEADER = "x-hpcbatch-workdir"
ATTEMPT_WORKDIR = "attempt"  # --workdir attempt: the agent's private per-attempt directory


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "submit",
        parents=[common],
        help="submit a job (SubmitJob)",
        usage="%(prog)s [options] [-- COMMAND [ARGS...]]",
        description="Submit a job. Everything after '--' becomes containerOverrides.command.",
    )
    parser.add_argument("--queue", "-q", default="default", help="job queue (default: default)")
    parser.add_argument(
        "--definition",
        "-d",
        help="job definition NAME[:REVISION] or ARN (default: default, or default-multinode "
        "with --nodes)",
    )
    parser.add_argument(
        "--name", "-n", help="job name (default: from the command or the definition)"
    )
    parser.add_argument(
        "--array-size", type=_args.positive_int, metavar="N", help="array job of N children"
    )
    parser.add_argument(
        "--depends-on",
        type=dependency,
        action="append",
        default=[],
        metavar="ID[:N_TO_N|:SEQUENTIAL]",
        help="wait for a job (repeatable); plain SEQUENTIAL chains array children",
    )
    parser.add_argument(
        "--nodes",
        type=_args.positive_int,
        metavar="N",
        help="multi-node parallel job of N nodes: COMMAND runs on the main node, the others "
        "hold their allocation for MPI ranks (nodeOverrides)",
    )
    parser.add_argument(
        "--every-node",
        action="store_true",
        help="with --nodes: run COMMAND on every node (AWS's style) instead of the main node only",
    )
    parser.add_argument(
        "--main-node",
        type=_args.non_negative_int,
        metavar="I",
        help="with --nodes: the main node the definition must name (AWS takes the main node "
        "from the job definition; default-multinode's is 0)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR|attempt",
        help="where the job runs on its node (default: the current directory; it must exist "
        "there); 'attempt': a fresh private directory per attempt",
    )
    parser.add_argument(
        "--consumable",
        type=consumable,
        action="append",
        default=[],
        metavar="NAME=N",
        help="needs N of consumable resource NAME, like Slurm's -L NAME:N (repeatable; "
        "consumableResourcePropertiesOverride, merged over the definition's)",
    )
    _args.add_resource_flags(parser)
    add_scheduling_flags(parser)
    parser.set_defaults(func=run, accepts_command=True)


def add_scheduling_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--priority",
        type=_args.non_negative_int,
        metavar="N",
        help="schedulingPriorityOverride, 0-9999, higher first",
    )
    parser.add_argument(
        "--share",
        metavar="ID",
        help="shareIdentifier: required on a queue with a scheduling policy (fair share) or "
        "with quota shares (it names the job's quota share)",
    )
    parser.add_argument(
        "--parameter",
        type=_args.key_value,
        action="append",
        default=[],
        metavar="K=V",
        help="Ref:: parameter substitution (repeatable)",
    )
    parser.add_argument(
        "--tag",
        type=_args.key_value,
        action="append",
        default=[],
        metavar="K=V",
        help="tag the job (repeatable)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="let the head refuse a job that no node could ever fit",
    )
    parser.add_argument(
        "--wait",
        "-w",
        action="store_true",
        help="wait until the job ends; exit 1 if it FAILED, 6 if it can never run",
    )
    # Words before '--' (``hpcbatch submit echo hi``): caught to point at '--', not argparse's
    # "unrecognized arguments".
    parser.add_argument("stray", nargs="*", help=argparse.SUPPRESS)


def consumable(text: str) -> dict[str, Any]:
    """``NAME=N``: a ConsumableResourceRequirement."""
    name, quantity = _args.key_value(text)
    return {"consumableResource": name, "quantity": _args.positive_int(quantity)}


def dependency(text: str) -> dict[str, str]:
    """``ID``, ``ID:N_TO_N``, ``ID:SEQUENTIAL`` or ``SEQUENTIAL``; child ids contain ':' too."""
    if not text:
        raise argparse.ArgumentTypeError("expected a job id")
    if text.lstrip(":").upper() == "SEQUENTIAL":
        return {"type": "SEQUENTIAL"}  # AWS: a SEQUENTIAL dependency names no job
    job_id, _, kind = text.rpartition(":")
    if job_id and kind.upper() in DEPENDENCY_TYPES:
        return {"jobId": job_id, "type": kind.upper()}
    return {"jobId": text}


def default_name(command: list[str], definition: str) -> str:
    if command:
        return _args.slug(os.path.basename(command[0]))
    base = definition.rsplit("/", 1)[-1].split(":", 1)[0]  # ARN or name:revision -> name
    return _args.slug(base)


def definition_of(args: argparse.Namespace) -> str:
    if args.definition:
        return str(args.definition)
    return DEFAULT_MULTINODE if args.nodes is not None else "default"


def check_flags(args: argparse.Namespace) -> str | None:
    """A usage problem (a command without '--', the multi-node flags), or None."""
    if getattr(args, "stray", None):
        import shlex

        return (
            f"the job's command goes after '--': hpcbatch submit [options] -- "
            f"{shlex.join(args.stray)}"
        )
    if args.nodes is None:
        if args.every_node:
            return "--every-node needs --nodes"
        return "--main-node needs --nodes" if args.main_node is not None else None
    if args.array_size is not None:
        return "--nodes and --array-size cannot be combined: array jobs cannot be multinode"
    if args.main_node is not None and args.main_node >= args.nodes:
        return f"--main-node {args.main_node} must be less than --nodes {args.nodes}"
    return None


HOLD = ["sleep", "infinity"]  # a node that only lends its allocation to the main node's MPI


def node_overrides(
    args: argparse.Namespace, overrides: dict[str, Any], main: int
) -> dict[str, Any]:
    """``nodeOverrides``: the count, and the command for the main node (node ``main``) with the
    other nodes holding, or for every node (``--every-node``); resources and environment go to
    every node."""
    result: dict[str, Any] = {"numNodes": args.nodes}
    if not overrides:
        return result
    if args.every_node or "command" not in overrides:
        result["nodePropertyOverrides"] = [{"targetNodes": "0:", "containerOverrides": overrides}]
        return result
    hold = {**overrides, "command": HOLD}
    ranges = [(f"{main}", overrides)]
    if main > 0:
        ranges.insert(0, (f"0:{main - 1}", hold))
    if main + 1 < args.nodes:
        ranges.append((f"{main + 1}:", hold))
    result["nodePropertyOverrides"] = [
        {"targetNodes": target, "containerOverrides": given} for target, given in ranges
    ]
    return result


def build_request(args: argparse.Namespace, main_node: int = 0) -> dict[str, Any]:
    """The SubmitJob body, with only the fields the user asked for; ``main_node``: the
    multinode definition's main node."""
    command: list[str] = args.command_argv
    definition = definition_of(args)
    body: dict[str, Any] = {
        "jobName": args.name or default_name(command, definition),
        "jobQueue": args.queue,
        "jobDefinition": definition,
    }
    if args.array_size is not None:
        body["arrayProperties"] = {"size": args.array_size}
    if args.depends_on:
        body["dependsOn"] = args.depends_on
    overrides: dict[str, Any] = {}
    if command:
        overrides["command"] = command
    if args.env:
        overrides["environment"] = _args.environment(args.env)
    requirements = _args.resource_requirements(args)
    if requirements:
        overrides["resourceRequirements"] = requirements
    if args.nodes is not None:
        body["nodeOverrides"] = node_overrides(args, overrides, main_node)
    elif overrides:
        body["containerOverrides"] = overrides
    _args.retry_and_timeout(args, body)
    if args.priority is not None:
        body["schedulingPriorityOverride"] = args.priority
    if args.share is not None:
        body["shareIdentifier"] = args.share
    if args.parameter:
        body["parameters"] = dict(args.parameter)
    if args.tag:
        body["tags"] = dict(args.tag)
    if args.consumable:
        body["consumableResourcePropertiesOverride"] = {"consumableResourceList": args.consumable}
    return body


def main_node_of(args: argparse.Namespace, ctx: Context) -> int | None:
    """The multinode definition's main node (None: no such definition): default-multinode's is
    0; another definition is asked only where it matters (--main-node, or a command for the main
    node alone)."""
    if args.definition is None:
        return 0
    if args.main_node is None and (args.every_node or not args.command_argv):
        return 0  # not needed: every node gets the same overrides
    reply = ctx.client.call("DescribeJobDefinitions", {"jobDefinitions": [definition_of(args)]})
    found = reply.get("jobDefinitions") or []
    main = (found[0].get("nodeProperties") or {}).get("mainNode") if found else None
    return main if isinstance(main, int) else None


def check_main_node(args: argparse.Namespace, main: int | None) -> str | None:
    """SubmitJob cannot move the main node: check that the definition names the one asked for."""
    if args.main_node is None or main == args.main_node:
        return None
    return (
        f"--main-node {args.main_node}: job definition {definition_of(args)} names main node "
        f"{main}, and a submission cannot change it (AWS has no override for mainNode); "
        "register a multinode definition with that mainNode and pass it with --definition"
    )


def workdir_of(args: argparse.Namespace) -> str | None:
    """The absolute directory to run in (None: the per-attempt one); OSError when the current
    directory is needed and is gone."""
    if args.workdir == ATTEMPT_WORKDIR:
        return None
    if args.workdir is None:
        return os.getcwd()
    return os.path.abspath(str(args.workdir))  # getcwd only for a relative DIR


def submit_headers(args: argparse.Namespace, workdir: str | None) -> dict[str, str]:
    """hpcbatch's extensions ride in headers so the body stays exactly what boto3 would send."""
    from urllib.parse import quote

    from hpcbatch.cli.client import STRICT_HEADER

    headers = {STRICT_HEADER: "1"} if args.strict else {}
    if workdir is not None:
        headers[WORKDIR_HEADER] = quote(workdir, safe="/")
    return headers


def run(args: argparse.Namespace, ctx: Context) -> int:
    problem = check_flags(args)
    if problem is not None:
        warn(f"error: {problem}")
        return EXIT_USAGE
    main = main_node_of(args, ctx) if args.nodes is not None else 0
    problem = check_main_node(args, main)
    if problem is not None:
        warn(f"error: {problem}")
        return EXIT_CLIENT_ERROR
    try:
        workdir = workdir_of(args)
    except OSError as error:
        warn(
            f"error: the current directory cannot be read ({error.strerror}); "
            "give --workdir DIR or --workdir attempt"
        )
        return EXIT_USAGE
    headers = submit_headers(args, workdir) or None
    reply = ctx.client.call("SubmitJob", build_request(args, main or 0), headers=headers)
    if ctx.json_output:
        ctx.emit_json(reply)
    else:
        sys.stdout.write(reply.get("jobId", "") + "\n")
        sys.stdout.flush()
        sys.stderr.write(f"submitted job {reply.get('jobName', '')} to queue {args.queue}\n")
    if not args.wait:
        return EXIT_OK
    from hpcbatch.cli.commands._wait import wait_for_jobs

    return wait_for_jobs(ctx.client, [reply["jobId"]])
