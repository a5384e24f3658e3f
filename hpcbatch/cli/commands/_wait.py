"""Waiting for jobs to end (``submit --wait``): poll DescribeJobs, report progress on stderr.

A job has **ended** when its status is SUCCEEDED or FAILED; for an array that is the parent's
status, which the head derives from its children. A single job gets one line per change of its
status or of its statusReason (``job ID: RUNNABLE - waiting for capacity: ...``), so a wait
never hangs silently. A job that **can never run** (RUNNABLE with a ``MISCONFIGURATION:``
reason: no node of its queue could ever hold it; for an array, its child 0 while no child has got
further than RUNNABLE) ends the wait at once with that reason and ``EXIT_CANNOT_RUN``; the job itself stays queued (cancel it, or give its queue
``jobStateTimeLimitActions``). Progress for an array is drawn from
``arrayProperties.statusSummary``: a one-line bar redrawn in place on a terminal, plain lines
(on change, at most every few seconds) when stderr is a file or a pipe, so CI logs stay short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from hpcbatch.cli.client import Client
from hpcbatch.cli.context import EXIT_CANNOT_RUN, EXIT_JOB_FAILED, EXIT_OK
from hpcbatch.errors import ClientError

ENDED = ("SUCCEEDED", "FAILED")
NEVER_RUNS = "MISCONFIGURATION:"
ORDER = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
FIRST_POLL_S = 0.05
MAX_POLL_S = 1.0
POLL_GROWTH = 1.5
PLAIN_LINE_EVERY_S = 5.0
BAR_WIDTH = 30


def next_interval(current: float) -> float:
    # Short jobs are seen ending quickly; long ones cost the head one request a second.
    return min(current * POLL_GROWTH, MAX_POLL_S)


class Progress:
    """Tells a person how the jobs are doing, without flooding a log file."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.clock = clock
        self._last_line: dict[str, str] = {}
        self._last_at: dict[str, float] = {}
        self._bar_drawn = False

    def update(self, job: dict[str, Any]) -> None:
        line = describe_progress(job)
        job_id = job["jobId"]
        if line == self._last_line.get(job_id):
            return
        if self.tty and "arrayProperties" in job:
            self.stream.write("\r\x1b[K" + line)
            self._bar_drawn = True
        else:
            ended = job.get("status") in ENDED
            since = self.clock() - self._last_at.get(job_id, -PLAIN_LINE_EVERY_S)
            if "arrayProperties" in job and not ended and since < PLAIN_LINE_EVERY_S:
                return
            self._end_bar()
            self.stream.write(line + "\n")
            self._last_at[job_id] = self.clock()
        self._last_line[job_id] = line
        self.stream.flush()

    def finish(self) -> None:
        self._end_bar()
        self.stream.flush()

    def _end_bar(self) -> None:
        if self._bar_drawn:
            self.stream.write("\n")
            self._bar_drawn = False


def describe_progress(job: dict[str, Any]) -> str:
    array = job.get("arrayProperties") or {}
    status = job.get("status", "?")
    if "size" not in array:
        reason = job.get("statusReason")
        return f"job {job['jobId']}: {status}" + (f" - {reason}" if reason else "")
    size = int(array["size"])
    summary: dict[str, int] = array.get("statusSummary") or {}
    done = summary.get("SUCCEEDED", 0) + summary.get("FAILED", 0)
    filled = BAR_WIDTH * done // size if size else BAR_WIDTH
    counts = "  ".join(f"{s} {summary[s]}" for s in ORDER if summary.get(s))
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{size} ended  {counts}".rstrip()


def wait_for_jobs(
    client: Client,
    job_ids: list[str],
    sleep: Callable[[float], None] = time.sleep,
    stream: TextIO | None = None,
) -> int:
    """Poll until every job has ended; 0 if all SUCCEEDED, 1 if any FAILED, ``EXIT_CANNOT_RUN``
    as soon as one can never run."""
    progress = Progress(stream or sys.stderr)
    interval = FIRST_POLL_S
    while True:
        jobs = describe(client, job_ids)
        for job in jobs:
            progress.update(job)
        stuck = [(job, why) for job in jobs if (why := never_runs(client, job))]
        if stuck:
            progress.finish()
            for job, why in stuck:
                progress.stream.write(
                    f"job {job['jobId']} ({job.get('jobName', '')}) can never run: {why}\n"
                )
            progress.stream.flush()
            return EXIT_CANNOT_RUN
        if all(job.get("status") in ENDED for job in jobs):
            progress.finish()
            return report_end(jobs, progress.stream)
        sleep(interval)
        interval = next_interval(interval)


def cannot_run(job: dict[str, Any]) -> bool:
    reason = job.get("statusReason") or ""
    return job.get("status") == "RUNNABLE" and reason.startswith(NEVER_RUNS)


def never_runs(client: Client, job: dict[str, Any]) -> str | None:
    """The MISCONFIGURATION reason when ``job`` can never run, else None. An array's children
    share one queue and one need, so while none has got further than RUNNABLE, child 0 speaks
    for all (one more DescribeJobs per poll, only then)."""
    if cannot_run(job):
        return str(job["statusReason"])
    summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
    if not summary.get("RUNNABLE") or any(summary.get(s) for s in ORDER[3:]):
        return None
    reply = client.call("DescribeJobs", {"jobs": [f"{job['jobId']}:0"]})
    child = (reply.get("jobs") or [{}])[0]
    return str(child["statusReason"]) if cannot_run(child) else None


def exit_code_of(job: dict[str, Any]) -> int | None:
    """The exit code of the job's last attempt (None: it never ran, or was killed)."""
    code = (job.get("container") or {}).get("exitCode")
    if code is None and job.get("attempts"):
        code = (job["attempts"][-1].get("container") or {}).get("exitCode")
    return code if isinstance(code, int) else None


def describe(client: Client, job_ids: list[str]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), 100):  # DescribeJobs takes at most 100 ids
        reply = client.call("DescribeJobs", {"jobs": job_ids[start : start + 100]})
        found.update((job["jobId"], job) for job in reply.get("jobs", []))
    missing = [job_id for job_id in job_ids if job_id not in found]
    if missing:
        raise ClientError(f"no such job: {', '.join(missing)}")
    return [found[job_id] for job_id in job_ids]


def report_end(jobs: list[dict[str, Any]], stream: TextIO) -> int:
    failed = [job for job in jobs if job.get("status") == "FAILED"]
    for job in failed:
        reason = job.get("statusReason") or "no reason given"
        code = exit_code_of(job)
        how = "FAILED" if code is None else f"FAILED (exit {code})"
        stream.write(f"job {job['jobId']} ({job.get('jobName', '')}) {how}: {reason}\n")
    stream.flush()
    return EXIT_JOB_FAILED if failed else EXIT_OK
