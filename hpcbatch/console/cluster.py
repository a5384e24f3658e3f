"""The cluster pages: queues (depth by status and why their jobs wait), compute environments,
and nodes (capacity bars, running jobs, heartbeat age, agent version)."""

from __future__ import annotations

import collections
import time
from itertools import islice
from typing import Any

from hpcbatch.core.explain import Memo
from hpcbatch.core.model import JobStatus
from hpcbatch.head.api import shapes, top
from hpcbatch.head.api.hpcbatch_routes import node_doc
from hpcbatch.head.service import Head

WHY_SAMPLE = 200  # the first RUNNABLE jobs of a queue whose reasons are counted
WHY_SHOWN = 3


def queues(head: Head) -> list[dict[str, Any]]:
    state = head.state
    depths = {q["name"]: q["depth"] for q in top.queue_depths(state)[0]}
    reservations = head.loop.plan.reservations
    shown = []
    for name in sorted(state.queues):
        queue = state.queues[name]
        listing = state.listing.get(name, {})
        memo = Memo()
        why: collections.Counter[str] = collections.Counter()
        for key in islice(state.runnable.get(name, ()), WHY_SAMPLE):
            job = state.jobs[key[-1]]
            why[shapes.status_reason(state, job, reservations, memo) or "no reason given"] += 1
        shown.append(
            {
                "name": name,
                "state": queue.state,
                "status": queue.status,
                "priority": queue.priority,
                "ces": list(queue.ce_order),
                "policy": queue.policy or queue.quota_policy or "",
                "depth": depths.get(name, {}),
                "done": {
                    s.value: len(listing.get(s, ()))
                    for s in (JobStatus.SUCCEEDED, JobStatus.FAILED)
                },
                "why": why.most_common(WHY_SHOWN),
                "sampled": min(WHY_SAMPLE, len(state.runnable.get(name, ()))),
            }
        )
    return shown


def environments(head: Head) -> list[dict[str, Any]]:
    state = head.state
    shown = []
    for name in sorted(state.ces):
        ce = state.ces[name]
        doc = shapes.compute_environment(state, ce, head.ce_status(ce))
        nodes = [n for n in state.nodes.values() if n.ce == name]
        shown.append(
            {
                "name": name,
                "kind": ce.kind,
                "type": ce.ce_type,
                "state": ce.state,
                "status": doc["status"],
                "reason": doc.get("statusReason") or "",
                "resources": doc.get("computeResources") or {},
                "nodes": len(nodes),
                "online": sum(1 for n in nodes if n.state.value == "ONLINE"),
                "vcpus": sum(n.capacity.cpu_milli for n in nodes) / 1000,
                "used": sum(n.allocated.cpu_milli for n in nodes) / 1000,
                "queues": sorted(q.name for q in state.queues.values() if name in q.ce_order),
            }
        )
    return shown


def nodes(head: Head) -> list[dict[str, Any]]:
    state = head.state
    now = time.time() * 1000
    shown = []
    for node in sorted(state.nodes.values(), key=lambda n: n.name):
        session = head.dispatcher.sessions.get(node.name)
        doc = node_doc(state, node, None if session is None else session.agent_version)
        jobs = sorted({attempt.rpartition("/")[0] for attempt in node.attempts})
        shown.append(
            {
                **doc,
                "cpu": node.capacity.cpu_milli / 1000,
                "cpu_used": node.allocated.cpu_milli / 1000,
                "jobs": jobs,
                "heartbeat_age": None
                if node.last_heartbeat is None
                else max(0.0, (now - node.last_heartbeat) / 1000),
            }
        )
    return shown
