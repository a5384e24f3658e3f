"""``hpcbatch cancel`` and ``hpcbatch terminate``: CancelJob / TerminateJob for each job given.

CancelJob only stops jobs that have not started (SUBMITTED, PENDING, RUNNABLE); TerminateJob
also kills STARTING and RUNNING ones. Both succeed for a job they cannot change, as AWS does.
The reason, which becomes the job's ``statusReason``, says who did it so a colleague reading
``hpcbatch describe`` later knows.
"""

from __future__ import annotations

import argparse
import sys

from hpcbatch.cli.context import EXIT_OK, Context

VERBS = {"cancel": ("CancelJob", "Cancelled"), "terminate": ("TerminateJob", "Terminated")}


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    helps = {
        "cancel": "cancel jobs that have not started (CancelJob)",
        "terminate": "stop jobs, running or not (TerminateJob)",
    }
    for verb, help_text in helps.items():
        parser = sub.add_parser(verb, parents=[common], help=help_text, description=help_text)
        parser.add_argument("jobs", nargs="+", metavar="JOB", help="job id")
        parser.add_argument(
            "--reason",
            "-r",
            help=f"statusReason (default: '{VERBS[verb][1]} by USER with hpcbatch CLI')",
        )
        parser.set_defaults(func=run, verb=verb)


def default_reason(verb: str) -> str:
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. a bare container uid
        user = "unknown user"
    return f"{VERBS[verb][1]} by {user} with hpcbatch CLI"


def run(args: argparse.Namespace, ctx: Context) -> int:
    operation, done = VERBS[args.verb]
    reason = args.reason or default_reason(args.verb)
    for job_id in dict.fromkeys(args.jobs):
        ctx.client.call(operation, {"jobId": job_id, "reason": reason})
        if not ctx.json_output:
            sys.stdout.write(f"{done.lower()} {job_id}\n")
    if ctx.json_output:
        ctx.emit_json({"jobIds": list(dict.fromkeys(args.jobs)), "reason": reason})
    return EXIT_OK
