"""``hpcbatch jobs``: ListJobs as a table, every page, several states merged.

AWS's ListJobs takes one ``jobStatus`` per call and, given neither a status nor a filter,
returns only RUNNING jobs; so ``--state`` may repeat (one call each) and ``--all`` asks for every
status. With ``--name`` the JOB_NAME filter applies and AWS ignores ``jobStatus``: the head
returns every status and ``--state`` is then applied here. REASON is shortened only on a
terminal (``--wide``: never), so ``hpcbatch jobs | grep`` sees whole reasons.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hpcbatch.cli.context import EXIT_OK, Context

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
REASON_WIDTH = 48


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser(
        "jobs",
        parents=[common],
        help="list jobs (ListJobs)",
        description="List jobs. Without --state or --all: RUNNING jobs only.",
    )
    parser.add_argument("--queue", "-q", default="default", help="job queue (default: default)")
    parser.add_argument(
        "--state",
        "-s",
        type=job_status,
        action="append",
        default=[],
        metavar="STATE",
        help=f"one of {', '.join(STATUSES)} (repeatable)",
    )
    parser.add_argument("--array", metavar="JOBID", help="list the children of this array job")
    parser.add_argument(
        "--name", metavar="GLOB", help="job name, case-insensitive, trailing * allowed"
    )
    parser.add_argument("--all", "-a", action="store_true", help="jobs in every state")
    parser.add_argument(
        "--wide", action="store_true", help="never shorten REASON (it is whole unless a terminal)"
    )
    parser.set_defaults(func=run)


def job_status(text: str) -> str:
    upper = text.upper()
    if upper not in STATUSES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(STATUSES)}, got {text!r}")
    return upper


def requests_for(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The ListJobs bodies to send, one per status asked for."""
    base: dict[str, Any] = {"arrayJobId": args.array} if args.array else {"jobQueue": args.queue}
    if args.name:
        return [{**base, "filters": [{"name": "JOB_NAME", "values": [args.name]}]}]
    statuses = list(STATUSES) if args.all else args.state
    if not statuses:
        return [base]
    return [{**base, "jobStatus": status} for status in dict.fromkeys(statuses)]


def collect(ctx: Context, args: argparse.Namespace) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for body in requests_for(args):
        for job in ctx.client.paginate("ListJobs", body, "jobSummaryList"):
            seen.setdefault(job["jobId"], job)
    jobs = list(seen.values())
    if args.name and args.state and not args.all:
        jobs = [job for job in jobs if job.get("status") in args.state]
    jobs.sort(key=_order)
    return jobs


def _order(job: dict[str, Any]) -> tuple[int, int, str]:
    """By creation; an array's children (created together) by index: 2 before 10."""
    index = (job.get("arrayProperties") or {}).get("index")
    return (job.get("createdAt") or 0, index if isinstance(index, int) else -1, job["jobId"])


def run(args: argparse.Namespace, ctx: Context) -> int:
    jobs = collect(ctx, args)
    if ctx.json_output:
        ctx.emit_json({"jobSummaryList": jobs, "nextToken": None})
    else:
        cut = sys.stdout.isatty() and not args.wide
        sys.stdout.write(render_jobs(jobs, REASON_WIDTH if cut else None) + "\n")
    return EXIT_OK


def render_jobs(jobs: list[dict[str, Any]], reason_width: int | None = REASON_WIDTH) -> str:
    """The table; REASON shortened to ``reason_width`` (None: whole, as for a pipe or a file)."""
    from hpcbatch.cli import render

    now = render.now_ms()
    rows = [
        [
            job["jobId"],
            job.get("jobName", ""),
            (job.get("hpcbatch") or {}).get("owner") or "-",  # whom it runs as, as squeue's USER
            job.get("status", ""),
            render.fmt_time(job.get("createdAt")),
            render.fmt_time(job.get("startedAt")),
            render.fmt_time(job.get("stoppedAt")),
            render.elapsed(job.get("startedAt"), job.get("stoppedAt"), now),
            render.truncate(job.get("statusReason"), reason_width or sys.maxsize),
        ]
        for job in jobs
    ]
    headers = ["JOB ID", "NAME", "OWNER", "STATE", "CREATED", "STARTED", "STOPPED", "RAN", "REASON"]
    return render.table(headers, rows)
