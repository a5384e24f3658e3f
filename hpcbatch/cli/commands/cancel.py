"""``hpcbatch cancel`` and ``hpcbatch terminate``: CancelJob / TerminateJob for each job given.

CancelJob only stops jobs that have not started (SUBMITTED, PENDING, RUNNABLE); TerminateJob
also kills STARTING and RUNNING ones. Both succeed for a job they cannot change, as AWS does.
The reason, which becomes the job's ``statusReason``, says who did it so a colleague reading
``hpcbatch describe`` later knows. An id the head does not know is named on stderr
(``no such job: ID (nothing to cancel)``) and skipped; the exit code stays 0, because the head's
CancelJob and TerminateJob answer 200 for it as for any job they cannot change (the API is
unchanged, so ``aws batch cancel-job`` and this command agree).
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


def _unknown(ctx: Context, job_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(job_ids), 100):  # DescribeJobs takes at most 100 ids
        reply = ctx.client.call("DescribeJobs", {"jobs": job_ids[start : start + 100]})
        found.update(job["jobId"] for job in reply.get("jobs", []))
    return set(job_ids) - found


def run(args: argparse.Namespace, ctx: Context) -> int:
    operation, done = VERBS[args.verb]
    reason = args.reason or default_reason(args.verb)
    unknown = _unknown(ctx, list(dict.fromkeys(args.jobs)))
    for job_id in dict.fromkeys(args.jobs):
        if job_id in unknown:
            sys.stderr.write(f"no such job: {job_id} (nothing to {args.verb})\n")
            continue
        ctx.client.call(operation, {"jobId": job_id, "reason": reason})
        if not ctx.json_output:
            sys.stdout.write(f"{done.lower()} {job_id}\n")
    if ctx.json_output:
        ctx.emit_json({"jobIds": list(dict.fromkeys(args.jobs)), "reason": reason})
    return EXIT_OK
