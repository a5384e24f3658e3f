"""``hpcbatch queues describe`` and ``queues snapshot``: one queue in full, and its dispatch order.

``describe`` joins DescribeJobQueues with the queue's scheduling policy name and its quota
shares (ListQuotaShares). ``snapshot`` is GetJobQueueSnapshot: its ``frontOfQueue`` holds job
ARNs only, so the CLI asks DescribeJobs (100 at a time) for the names and shares it shows.
"""

from __future__ import annotations

import sys
from typing import Any

from hpcbatch.cli.context import EXIT_OK, Context

DESCRIBE_JOBS_BATCH = 100  # DescribeJobs takes at most 100 ids


def describe(names: list[str], ctx: Context) -> int:
    from hpcbatch.errors import ClientError

    queues = list(ctx.client.paginate("DescribeJobQueues", {"jobQueues": names}, "jobQueues"))
    known = {q.get("jobQueueName") for q in queues} | {q.get("jobQueueArn") for q in queues}
    missing = [name for name in names if name not in known]
    if missing:
        raise ClientError(f"jobQueues: no job queue named {missing[0]!r}")
    if ctx.json_output:
        ctx.emit_json({"jobQueues": queues, "nextToken": None})
        return EXIT_OK
    blocks = [queue_block(queue, ctx) for queue in queues]
    sys.stdout.write("\n\n".join(blocks) + "\n")
    return EXIT_OK


def queue_block(queue: dict[str, Any], ctx: Context) -> str:
    from hpcbatch.cli import render
    from hpcbatch.cli.commands.quota_shares import quota_text

    order = sorted(queue.get("computeEnvironmentOrder") or [], key=lambda o: o.get("order", 0))
    policy = queue.get("schedulingPolicyArn")
    lines = [
        ("name", queue.get("jobQueueName", "")),
        ("arn", queue.get("jobQueueArn", "")),
        ("state", f"{queue.get('state', '')} ({queue.get('status', '')})"),
        ("reason", queue.get("statusReason", "")),
        ("priority", str(queue.get("priority", ""))),
        (
            "compute environments",
            ", ".join(
                f"{render.short_name(o.get('computeEnvironment'))}:{o.get('order')}" for o in order
            ),
        ),
        (
            "scheduling policy",
            f"{render.short_name(policy)} (fair share; {policy})" if policy else "none (FIFO)",
        ),
    ]
    if not policy:
        body = {"jobQueue": queue.get("jobQueueName", "")}
        shares = list(ctx.client.paginate("ListQuotaShares", body, "quotaShares"))
        lines.append(
            (
                "quota shares",
                ", ".join(
                    f"{s.get('quotaShareName')} ({quota_text(s.get('capacityLimits'))})"
                    for s in shares
                ),
            )
        )
    for action in queue.get("jobStateTimeLimitActions") or []:
        lines.append(
            (
                "time limit",
                f"{action.get('action')} {action.get('state')} jobs after "
                f"{action.get('maxTimeSeconds')} s ({action.get('reason')})",
            )
        )
    tags = queue.get("tags") or {}
    lines.append(("tags", " ".join(f"{k}={v}" for k, v in sorted(tags.items()))))
    return render.fields(lines)


def describe_jobs(ctx: Context, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(job_ids), DESCRIBE_JOBS_BATCH):
        chunk = job_ids[start : start + DESCRIBE_JOBS_BATCH]
        for job in ctx.client.call("DescribeJobs", {"jobs": chunk}).get("jobs") or []:
            found[job.get("jobId", "")] = job
    return found


def snapshot(name: str, limit: int, ctx: Context) -> int:
    reply = ctx.client.call("GetJobQueueSnapshot", {"jobQueue": name})
    if ctx.json_output:
        ctx.emit_json(reply)
        return EXIT_OK
    from hpcbatch.cli import render

    front = (reply.get("frontOfQueue") or {}).get("jobs") or []
    ids = [render.short_name(entry.get("jobArn")) for entry in front]
    jobs = describe_jobs(ctx, ids)
    rows = []
    first_at: dict[str, int] = {}
    for position, (job_id, entry) in enumerate(zip(ids, front, strict=True), start=1):
        job = jobs.get(job_id, {})
        share = job.get("shareIdentifier", "")
        if share and share not in first_at:
            first_at[share] = position
        if position <= limit:
            rows.append(
                [
                    str(position),
                    job_id,
                    job.get("jobName", ""),
                    share,
                    str(job.get("schedulingPriority", "")),
                    render.fmt_time(entry.get("earliestTimeAtPosition")),
                ]
            )
    out = [f"queue {name}: {len(front)} RUNNABLE job(s) at the front, in dispatch order"]
    if rows:
        headers = ["#", "JOB ID", "NAME", "SHARE", "PRIORITY", "RUNNABLE SINCE"]
        out.append(render.table(headers, rows))
    if len(front) > limit:
        out.append(f"... {len(front) - limit} more (--limit N shows more; the head lists 100)")
    quota_fronts = reply.get("frontOfQuotaShares")
    share_firsts = None
    if quota_fronts is not None:  # a queue with quota shares: each share's first job
        share_firsts = {
            share: render.short_name(jobs[0].get("jobArn")) if jobs else ""
            for share, jobs in (quota_fronts.get("quotaShares") or {}).items()
        }
    out.append(utilization_text(reply.get("queueUtilization") or {}, first_at, share_firsts))
    sys.stdout.write("\n".join(out) + "\n")
    return EXIT_OK


def usage_text(usages: list[dict[str, Any]] | None) -> str:
    from hpcbatch.cli.render import number, plural

    parts = []
    for usage in usages or []:
        unit = usage.get("capacityUnit", "")
        amount = number(usage.get("quantity"))
        parts.append(plural(amount, "vCPU") if unit == "VCPU" else f"{amount} {unit}")
    return ", ".join(parts) or "0"


def utilization_text(
    utilization: dict[str, Any],
    first_at: dict[str, int],
    share_firsts: dict[str, str] | None = None,
) -> str:
    """What the queue and each share use now, and where each share's first job stands;
    ``share_firsts`` (a queue with quota shares): each share's first job, from
    ``frontOfQuotaShares``, shown even when it is past the front's 100 jobs."""
    from hpcbatch.cli import render

    lines = [f"in use: {usage_text(utilization.get('totalCapacityUsage'))}"]
    rows: dict[str, list[str]] = {}
    fairshare = utilization.get("fairshareUtilization")
    if fairshare is not None:
        lines[0] += f"; active shares: {fairshare.get('activeShareCount', 0)}"
        for entry in fairshare.get("topCapacityUtilization") or []:
            share = entry.get("shareIdentifier", "")
            rows[share] = [share, usage_text(entry.get("capacityUsage"))]
    quota = utilization.get("quotaShareUtilization")
    for entry in (quota or {}).get("topCapacityUtilization") or []:
        share = entry.get("quotaShareName", "")
        rows[share] = [share, usage_text(entry.get("capacityUsage"))]
    for share in [*first_at, *(share_firsts or {})]:
        rows.setdefault(share, [share, "0"])
    if rows:
        table_rows = [
            row
            + [str(first_at.get(share, ""))]
            + ([] if share_firsts is None else [share_firsts.get(share, "")])
            for share, row in sorted(rows.items(), key=lambda kv: first_at.get(kv[0], 10**9))
        ]
        headers = ["SHARE", "IN USE", "FIRST JOB AT #"]
        if share_firsts is not None:
            headers.append("FIRST JOB")
        lines.append(render.table(headers, table_rows))
    return "\n".join(lines)
