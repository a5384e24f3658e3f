"""The jobs table and a job's page: what they show, read from the State on the event loop.

The table never walks all jobs. ``state.listing[owner][status]`` keeps each queue's (or array's,
or multi-node job's) ids in the order they entered that status, so a page is a slice of the
buckets chained in the order the table shows them: statuses with live work first (RUNNING,
STARTING, RUNNABLE, PENDING, SUBMITTED, then FAILED, SUCCEEDED), and within one the newest to
enter it first (``reversed`` on a dict costs nothing up front). Paging to the millionth job
skips ids in C, a few milliseconds. A name or owner filter is applied to that stream lazily: a
page stops reading as soon as it is full, and such a listing shows "next" rather than a count.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any
from urllib.parse import urlencode

from hpcbatch.core.explain import Memo
from hpcbatch.core.model import ACTIVE, Job, JobStatus
from hpcbatch.core.state import State
from hpcbatch.errors import ValidationError
from hpcbatch.head.api import shapes
from hpcbatch.head.auth.identify import Principal
from hpcbatch.head.auth.policy import job_refusal

PAGE_SIZE = 50
MAX_PAGE = 10_000_000
ORDER = (
    JobStatus.RUNNING,
    JobStatus.STARTING,
    JobStatus.RUNNABLE,
    JobStatus.PENDING,
    JobStatus.SUBMITTED,
    JobStatus.FAILED,
    JobStatus.SUCCEEDED,
)
FILTERS = ("queue", "status", "name", "owner", "array", "multinode")
MAX_FILTER = 256


@dataclass
class Listing:
    """The table's filters as the page's query string gave them."""

    queue: str = ""
    status: str = ""
    name: str = ""
    owner: str = ""
    array: str = ""
    multinode: str = ""
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, query: dict[str, str], state: State) -> Listing:
        """The filters in ``query``; one that breaks its rule is dropped and its error kept
        for the form, so the page still shows a table."""
        listing = cls()
        for name in FILTERS:
            setattr(listing, name, query.get(name, "").strip())
        for name in FILTERS:
            value = getattr(listing, name)
            if len(value) > MAX_FILTER or "\x00" in value:
                listing.errors[name] = f"must be at most {MAX_FILTER} characters"
                setattr(listing, name, "")
        if listing.status and listing.status not in JobStatus.__members__:
            listing.errors["status"] = "must be one of " + ", ".join(s.value for s in ORDER)
            listing.status = ""
        if listing.queue and listing.queue not in state.queues:
            listing.errors["queue"] = f"no queue {listing.queue!r}"
        page = query.get("page", "1")
        if page.isascii() and page.isdigit() and 1 <= int(page) <= MAX_PAGE:
            listing.page = int(page)
        else:
            listing.errors["page"] = f"must be a page number from 1 to {MAX_PAGE:,}"
        return listing

    def owners(self, state: State) -> list[str]:
        """Whose listings the table reads: an array's or a multi-node job's children, else a
        queue's top-level jobs, else every queue's."""
        if self.array:
            return [self.array]
        if self.multinode:
            return [self.multinode]
        if self.queue:
            return [self.queue]
        return sorted(state.queues)

    def statuses(self) -> tuple[JobStatus, ...]:
        return (JobStatus(self.status),) if self.status else ORDER

    def query(self, **changed: Any) -> str:
        """This listing's query string, with ``changed`` filters (a link to another page)."""
        values = {name: getattr(self, name) for name in (*FILTERS, "page")} | changed
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


def _matches(listing: Listing, job: Job) -> bool:
    if listing.owner and job.owner != listing.owner:
        return False
    if listing.name:
        if any(c in listing.name for c in "*?["):
            return fnmatch.fnmatchcase(job.name, listing.name)
        return listing.name.lower() in job.name.lower()
    return True


def _ids(state: State, listing: Listing) -> Iterator[str]:
    owners = listing.owners(state)
    buckets = []
    for status in listing.statuses():
        for owner in owners:
            bucket = state.listing.get(owner, {}).get(status)
            if bucket:
                buckets.append(bucket)
    return chain.from_iterable(reversed(b) for b in buckets)


def total(state: State, listing: Listing) -> int | None:
    """How many jobs the listing holds, where that is cheap (no name or owner filter)."""
    if listing.name or listing.owner:
        return None
    owners = listing.owners(state)
    return sum(len(state.listing.get(o, {}).get(s, ())) for s in listing.statuses() for o in owners)


def page_of(state: State, listing: Listing, reservations: Any) -> dict[str, Any]:
    """The rows of the listing's page, whether another follows, and the count if cheap."""
    start = (listing.page - 1) * PAGE_SIZE
    jobs: Iterator[Job] = (state.jobs[i] for i in _ids(state, listing))
    if listing.name or listing.owner:
        jobs = (job for job in jobs if _matches(listing, job))
    chunk = list(islice(jobs, start, start + PAGE_SIZE + 1))
    memo = Memo()
    rows = [row(state, job, reservations, memo) for job in chunk[:PAGE_SIZE]]
    count = total(state, listing)
    return {
        "rows": rows,
        "more": len(chunk) > PAGE_SIZE,
        "total": count,
        "pages": None if count is None else max(1, -(-count // PAGE_SIZE)),
    }


def row(state: State, job: Job, reservations: Any, memo: Memo) -> dict[str, Any]:
    latest = job.attempts[-1] if job.attempts else None
    doc: dict[str, Any] = {
        "id": job.job_id,
        "name": job.name,
        "status": job.status.value,
        "reason": shapes.status_reason(state, job, reservations, memo) or "",
        "queue": job.queue,
        "owner": job.owner or "",
        "created": job.created_at,
        "started": job.started_at,
        "stopped": job.stopped_at,
        "attempts": len(job.attempts),
        "node": latest.node if latest and job.status in ACTIVE else "",
        "exit": latest.exit_code if latest and job.stopped_at else None,
        "array": None,
        "nodes": job.multinode.num_nodes if job.multinode else None,
    }
    if job.is_array_parent:
        counts: Mapping[JobStatus, int] = state.child_counts.get(job.job_id, {})
        done = counts.get(JobStatus.SUCCEEDED, 0) + counts.get(JobStatus.FAILED, 0)
        doc["array"] = {
            "size": job.array_size,
            "done": done,
            "failed": counts.get(JobStatus.FAILED, 0),
            "running": counts.get(JobStatus.RUNNING, 0) + counts.get(JobStatus.STARTING, 0),
        }
    return doc


def job_or_none(state: State, job_id: str) -> Job | None:
    return state.jobs.get(job_id) if len(job_id) <= 200 else None


def detail(state: State, job: Job, reservations: Any, principal: Principal) -> dict[str, Any]:
    """Everything a job's page shows but its story and log (read apart: they need I/O)."""
    doc = shapes.job_detail(state, job, reservations, Memo())
    container = doc.get("container") or {}
    attempts = [
        {
            "number": a.number,
            "node": a.node,
            "started": a.started_at,
            "stopped": a.stopped_at,
            "exit": a.exit_code,
            "reason": a.reason or "",
            "stream": a.log_stream or "",
        }
        for a in job.attempts
    ]
    children: list[dict[str, Any]] = []
    if job.multinode is not None:
        for index in range(job.multinode.num_nodes):
            node_job = state.jobs.get(f"{job.job_id}#{index}")
            if node_job is not None:
                children.append(row(state, node_job, reservations, Memo()))
    counts = None
    if job.is_array_parent:
        held: Mapping[JobStatus, int] = state.child_counts.get(job.job_id, {})
        counts = [(s.value, held.get(s, 0)) for s in ORDER]
    refusal = job_refusal(principal, job, "CancelJob", "cancel")
    return {
        "job": row(state, job, reservations, Memo()),
        "doc": doc,
        "command": container.get("command", []),
        "environment": container.get("environment", []),
        "resources": container.get("resourceRequirements", []),
        "attempts": attempts,
        "counts": counts,
        "nodes": children,
        "parent": job.parent_id,
        "depends": doc.get("dependsOn", []),
        "waiting": sorted(job.waiting_on),
        "may_act": refusal is None,
        "live": job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED),
        "logs": bool(job.attempts) and not job.is_array_parent and job.multinode is None,
        "is_array_child": job.array_index is not None,
    }


def check_id(job_id: str) -> str:
    if not job_id or len(job_id) > 200:
        raise ValidationError("jobId", "must be a job id of 1-200 characters")
    return job_id
