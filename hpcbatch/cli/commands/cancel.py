"""``hpcbatch cancel`` and ``hpcbatch terminate``: the jobs given, through CancelJobs /
TerminateJobs, 50 ids a request (AWS's limit), so a thousand jobs cost 20 requests, not 1,000.

Cancelling only stops jobs that have not started (SUBMITTED, PENDING, RUNNABLE); terminating
also kills STARTING and RUNNING ones. Both succeed for a job they cannot change, as AWS does.
The reason, which becomes the job's ``statusReason``, says who did it so a colleague reading
``hpcbatch describe`` later knows. An id the head does not know is named on stderr
(``no such job: ID (nothing to cancel)``) and skipped; the exit code stays 0, because the head
counts it successful as for any job it cannot change (as AWS does, so ``aws batch cancel-jobs``
and this command agree). A job the head refuses (another user's, for one who is no admin) is
named on stderr with the head's reason, the others are still acted on, and the exit code is 3.
"""

from __future__ import annotations

import argparse
import sys

from hpcbatch.cli.context import EXIT_CLIENT_ERROR, EXIT_OK, Context

VERBS = {"cancel": ("CancelJobs", "Cancelled"), "terminate": ("TerminateJobs", "Terminated")}
BULK_LIMIT = 50  # ids per CancelJobs / TerminateJobs request (AWS's)


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    helps = {
        "cancel": "cancel jobs that have not started (CancelJobs)",
        "terminate": "stop jobs, running or not (TerminateJobs)",
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
    job_ids = list(dict.fromkeys(args.jobs))
    unknown = _unknown(ctx, job_ids)
    known = [job_id for job_id in job_ids if job_id not in unknown]
    successful: set[str] = set()
    errors: dict[str, dict[str, str]] = {}
    for start in range(0, len(known), BULK_LIMIT):
        chunk = known[start : start + BULK_LIMIT]
        reply = ctx.client.call(operation, {"jobs": chunk, "reason": reason})
        successful.update(reply.get("successful") or [])
        errors.update((e["job"], e) for e in reply.get("errors") or [])
    for job_id in job_ids:
        if job_id in unknown:
            sys.stderr.write(f"no such job: {job_id} (nothing to {args.verb})\n")
        elif job_id in errors:
            error = errors[job_id]
            sys.stderr.write(
                f"cannot {args.verb} {job_id}: {error.get('code')}: {error.get('message')}\n"
            )
        elif job_id in successful and not ctx.json_output:
            sys.stdout.write(f"{done.lower()} {job_id}\n")
    if ctx.json_output:
        ctx.emit_json(
            {
                "jobIds": job_ids,
                "reason": reason,
                "successful": [i for i in job_ids if i in successful],
                "errors": [errors[i] for i in job_ids if i in errors],
            }
        )
    return EXIT_CLIENT_ERROR if errors else EXIT_OK
