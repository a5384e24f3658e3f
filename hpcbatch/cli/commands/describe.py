"""``hpcbatch describe JOB...``: DescribeJobs as a readable page per job.

The view answers what a person asks first: what state is it in and why, what did it run with
what resources, where did each attempt run and how did it end, and (``--history``) the whole
story of events the head recorded for it. Unknown ids are omitted by DescribeJobs (AWS's rule);
this command names them on stderr and exits 3. A multi-node parent's nodes ``<parent>#<i>``
are fetched too: a table on its page, and ``"nodes": {parent: [node jobs]}`` with ``-o json``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import urllib.parse
from typing import Any

from hpcbatch.cli import render
from hpcbatch.cli.context import EXIT_CLIENT_ERROR, EXIT_OK, Context, warn

Job = dict[str, Any]
LABEL_WIDTH = 13


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = sub.add_parser("describe", parents=[common], help="show jobs in detail (DescribeJobs)")
    parser.add_argument("jobs", nargs="+", metavar="JOB", help="job id (array child: PARENT:INDEX)")
    parser.add_argument("--history", action="store_true", help="add the head's event history")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    jobs: list[Job] = []
    ids = list(dict.fromkeys(args.jobs))
    for start in range(0, len(ids), 100):  # DescribeJobs takes at most 100 ids
        jobs += ctx.client.call("DescribeJobs", {"jobs": ids[start : start + 100]}).get("jobs", [])
    histories = {job["jobId"]: history(ctx, job["jobId"]) for job in jobs} if args.history else {}
    nodes = {job["jobId"]: node_jobs(ctx, job) for job in jobs}
    if ctx.json_output:
        document: dict[str, Any] = {"jobs": jobs}
        if args.history:
            document["history"] = histories
        parents = {job_id: found for job_id, found in nodes.items() if found}
        if parents:
            document["nodes"] = parents  # beside AWS's answer, which stays as DescribeJobs gave it
        ctx.emit_json(document)
    else:
        pages = [render_job(job, histories.get(job["jobId"]), nodes[job["jobId"]]) for job in jobs]
        if pages:
            sys.stdout.write("\n\n".join(pages) + "\n")
    missing = [job_id for job_id in ids if job_id not in {job["jobId"] for job in jobs}]
    for job_id in missing:
        warn(f"error: no such job: {job_id}")
    return EXIT_CLIENT_ERROR if missing else EXIT_OK


def node_jobs(ctx: Context, job: Job) -> list[Job]:
    """The nodes ``<parent>#<i>`` of a multi-node parent, in index order; [] for other jobs."""
    count = (job.get("nodeProperties") or {}).get("numNodes")
    if not isinstance(count, int) or "nodeDetails" in job:
        return []
    ids = [f"{job['jobId']}#{index}" for index in range(count)]
    found: list[Job] = []
    for start in range(0, len(ids), 100):
        found += ctx.client.call("DescribeJobs", {"jobs": ids[start : start + 100]}).get("jobs", [])
    return sorted(found, key=lambda node: (node.get("nodeDetails") or {}).get("nodeIndex", 0))


def history(ctx: Context, job_id: str) -> list[dict[str, Any]]:
    path = f"/hpcbatch/v1/jobs/{urllib.parse.quote(job_id, safe='')}/history"
    events: list[dict[str, Any]] = ctx.client.get(path).get("events", [])
    return events


def render_job(
    job: Job, events: list[dict[str, Any]] | None = None, nodes: list[Job] | None = None
) -> str:
    lines = [f"Job {job['jobId']}  {job.get('jobName', '')}"]
    fields = summary_fields(job) + container_fields(job) + structure_fields(job)
    lines += [f"  {label + ':':<{LABEL_WIDTH}} {value}" for label, value in fields if value]
    lines += node_lines(nodes or [])
    lines += attempt_lines(job)
    if events is not None:
        lines += history_lines(events)
    return "\n".join(lines)


def summary_fields(job: Job) -> list[tuple[str, str]]:
    now = render.now_ms()
    ran = render.elapsed(job.get("startedAt"), job.get("stoppedAt"), now)
    flags = [flag for flag in ("isCancelled", "isTerminated") if job.get(flag)]
    return [
        ("status", job.get("status", "") + (f"  ({', '.join(flags)})" if flags else "")),
        ("reason", job.get("statusReason", "")),
        ("queue", render.short_name(job.get("jobQueue"))),
        ("definition", render.short_name(job.get("jobDefinition"))),
        ("created", render.fmt_time(job.get("createdAt"))),
        ("started", render.fmt_time(job.get("startedAt")) if job.get("startedAt") else ""),
        ("stopped", render.fmt_time(job.get("stoppedAt")) if job.get("stoppedAt") else ""),
        ("ran", ran if job.get("startedAt") else ""),
        ("priority", str(job["schedulingPriority"]) if "schedulingPriority" in job else ""),
    ]


def container_fields(job: Job) -> list[tuple[str, str]]:
    container = job.get("container") or {}
    command = container.get("command")
    env = container.get("environment") or []
    retry = (job.get("retryStrategy") or {}).get("attempts")
    timeout = (job.get("timeout") or {}).get("attemptDurationSeconds")
    params = job.get("parameters") or {}
    workdir = (job.get("hpcbatch") or {}).get("workdir")
    return [
        ("command", shlex.join(command) if command else ""),
        ("workdir", workdir or ("its attempt's own directory" if command else "")),
        ("resources", resources_text(container)),
        ("environment", " ".join(f"{e.get('name')}={e.get('value', '')}" for e in env)),
        ("parameters", " ".join(f"{k}={v}" for k, v in params.items())),
        ("retry", render.plural(retry, "attempt") if retry else ""),
        ("timeout", f"{timeout}s per attempt" if timeout else ""),
    ]


def resources_text(container: dict[str, Any]) -> str:
    found = {r.get("type"): r.get("value") for r in container.get("resourceRequirements") or []}
    vcpus = found.get("VCPU") or container.get("vcpus")
    memory = found.get("MEMORY") or container.get("memory")
    parts = [render.plural(vcpus, "vCPU") if vcpus else "", f"{memory} MiB" if memory else ""]
    parts.append(render.plural(found["GPU"], "GPU") if found.get("GPU") else "")
    return ", ".join(part for part in parts if part)


def structure_fields(job: Job) -> list[tuple[str, str]]:
    """Arrays, multi-node jobs and dependencies: how this job relates to others."""
    array = job.get("arrayProperties") or {}
    array_text = ""
    if "size" in array:
        summary = array.get("statusSummary") or {}
        counts = ", ".join(f"{state} {count}" for state, count in summary.items() if count)
        size = array["size"]
        array_text = f"{size} {'child' if size == 1 else 'children'}" + (
            f": {counts}" if counts else ""
        )
    elif "index" in array:
        array_text = f"child {array['index']} of {job['jobId'].rsplit(':', 1)[0]}"
    nodes = job.get("nodeProperties") or {}
    details = job.get("nodeDetails") or {}
    nodes_text = ""
    if "numNodes" in nodes:
        nodes_text = f"{nodes['numNodes']} nodes, main node {nodes.get('mainNode', 0)}"
    elif "nodeIndex" in details:
        parent = job["jobId"].rsplit("#", 1)[0]
        role = " (main node)" if details.get("isMainNode") else ""
        nodes_text = f"node {details['nodeIndex']} of {parent}{role}"
    deps = [
        " ".join(filter(None, [dep.get("jobId"), f"({dep['type']})" if dep.get("type") else ""]))
        for dep in job.get("dependsOn") or []
    ]
    return [("array", array_text), ("nodes", nodes_text), ("depends on", ", ".join(deps))]


def node_lines(nodes: list[Job]) -> list[str]:
    """A multi-node job's nodes: index, main or not, host, state and exit code of each."""
    if not nodes:
        return []
    rows = []
    for node in nodes:
        details = node.get("nodeDetails") or {}
        latest = (node.get("attempts") or [{}])[-1].get("container") or {}
        host = (node.get("hpcbatch") or {}).get("node") or render.short_name(
            latest.get("containerInstanceArn")
        )
        exit_code = (node.get("container") or {}).get("exitCode")
        rows.append(
            [
                str(details.get("nodeIndex", "?")),
                "main" if details.get("isMainNode") else "",
                render.short_name(host) or "-",
                node.get("status", ""),
                "-" if exit_code is None else str(exit_code),
            ]
        )
    table = render.table(["NODE", "ROLE", "HOST", "STATE", "EXIT"], rows)
    return ["  nodes:"] + ["    " + line for line in table.splitlines()]


def attempt_lines(job: Job) -> list[str]:
    attempts = job.get("attempts") or []
    if not attempts:
        return []
    lines = ["  attempts:"]
    for number, attempt in enumerate(attempts, start=1):
        container = attempt.get("container") or {}
        node = render.short_name(container.get("containerInstanceArn") or container.get("taskArn"))
        exit_code = container.get("exitCode")
        started, stopped = attempt.get("startedAt"), attempt.get("stoppedAt")
        ran = render.elapsed(started, stopped, render.now_ms())
        lines.append(
            f"    #{number}  node {node or '-'}  exit {'-' if exit_code is None else exit_code}"
            f"  {render.fmt_time(started)} -> {render.fmt_time(stopped)} ({ran})"
        )
        reason = container.get("reason") or attempt.get("statusReason")
        if reason:
            lines.append(f"        reason: {reason}")
        if container.get("logStreamName"):
            lines.append(f"        log:    {container['logStreamName']}")
    return lines


def history_lines(events: list[dict[str, Any]]) -> list[str]:
    if not events:
        return ["  history:     (no events)"]
    rows = [
        [
            render.fmt_time(e.get("time")),
            e.get("event", ""),
            e.get("cause", ""),
            e.get("detail", ""),
        ]
        for e in events
    ]
    table = render.table(["TIME", "EVENT", "CAUSE", "DETAIL"], rows)
    return ["  history:"] + ["    " + line for line in table.splitlines()]
