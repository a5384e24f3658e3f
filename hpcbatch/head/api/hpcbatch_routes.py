"""hpcbatch's own routes under ``/hpcbatch/v1/``: what the AWS API has no words for.

- ``GET  nodes`` — every node: capacity, allocation, state and why, last heartbeat, enforcement,
  and where set its address, MPI launch port and placement group; a node with GPUs lists each
  (``gpuDevices``: index, id, model, memory, FREE / IN_USE by which job / OUT_OF_SERVICE and
  why) and how jobs are kept to theirs (``gpuIsolation``: ``devices`` or ``env``)
- ``POST nodes/<name>/drain`` ``{"reason"}`` and ``nodes/<name>/resume`` (admins)
- ``POST nodes`` ``{"computeEnvironment", "hosts": [<host table>...]}`` — hosts into an
  UNMANAGED compute environment (admins; host tables as in the config, ``head/hosts.py``; key
  and known_hosts are paths on the head's machine), and ``POST nodes/<name>/remove``: let one
  go after its jobs (``head/ce_hosts.py``)
- ``GET  jobs/<jobId>/logs?attempt=N&offset=B`` — a chunk of an attempt's output (the job's
  owner and admins)
- ``GET  jobs/<jobId>/history`` — the job's story from the journal
- ``GET  health`` (the one route that needs no identity): status, version, and ``console``,
  the web console's address (None when the head listens on no TCP address)
- ``GET  whoami`` — who the head takes the caller for: user, uid, admin, via (peer or key)
- ``users...`` — API users and access keys, admins only (``users_routes.py``)
- ``GET  top?jobs=N`` — what ``hpcbatch top`` draws, in one answer: queues with depth by status,
  every node (as ``nodes``), the newest N (default 10, at most 100) running and failed jobs
  (``head/api/top.py``)

Every malformed parameter is a 400 naming it (ASCII digits only: ``str.isdigit`` also takes
``²``, which ``int()`` refuses); an agent that does not answer a log read in time is a 504 naming
the node, and one not connected a 503. The history is read in a worker thread
(``Head.history``), so a big write that holds the store never stalls the event loop, and with it
every other request.
"""

from __future__ import annotations

import functools
import re
import socket
from typing import Any
from urllib.parse import unquote

from hpcbatch.core import events as ev
from hpcbatch.core.gpus import holders
from hpcbatch.core.model import ACTIVE, Job, Node, attempt_id, format_vcpus
from hpcbatch.core.state import State
from hpcbatch.errors import ClientError, NotFoundError, TransportError, ValidationError
from hpcbatch.head.agents import MAX_LOG_OFFSET
from hpcbatch.head.api import top, users_routes
from hpcbatch.head.api.bodies import json_object
from hpcbatch.head.api.operations import Call
from hpcbatch.head.api.parse import SURROGATE_RULE, SURROGATES
from hpcbatch.head.auth.policy import require_admin, require_job_owner
from hpcbatch.head.config import HeadConfig
from hpcbatch.head.hosts import parse_host
from hpcbatch.head.loop import now_ms

VERSION = "0.1.0"
LOG_CHUNK = 256 * 1024


def node_doc(state: State, node: Node, agent_version: str | None = None) -> dict[str, Any]:
    """A node as the nodes route shows it; ``address``, ``launchPort`` (its agent's MPI launch
    server), ``placementGroup``, ``agentVersion`` (the connected agent's build), ``retiring``
    (why it is leaving for good, core/retire.py) and the GPU fields only where set."""
    doc: dict[str, Any] = {
        "name": node.name,
        "computeEnvironment": node.ce,
        "state": node.state.value,
        "stateReason": node.state_reason,
        "stateChangedAt": node.state_changed_at,
        "vcpus": format_vcpus(node.capacity.cpu_milli),
        "memoryMiB": node.capacity.memory_mib,
        "gpus": node.capacity.gpus,
        "allocatedVcpus": format_vcpus(node.allocated.cpu_milli),
        "allocatedMemoryMiB": node.allocated.memory_mib,
        "allocatedGpus": node.allocated.gpus,
        "runningJobs": len(node.attempts),
        "lastHeartbeatAt": node.last_heartbeat,
        "enforcement": node.enforcement,
    }
    optional = {
        "address": node.address,
        "launchPort": node.launch_port,
        "placementGroup": node.placement_group,
        "agentVersion": agent_version,
        "retiring": node.retiring,
        "gpusReason": node.gpus_reason,
        **(_gpu_fields(state, node) if node.gpus or node.gpus_reason else {}),
    }
    doc.update((key, value) for key, value in optional.items() if value is not None)
    return doc


def console_url(config: HeadConfig) -> str | None:
    """Where a browser reaches the web console: the head's TCP listen address (a wildcard one
    by this machine's name); None when it listens on no TCP address."""
    return _console_url(config.listen or "", bool(config.tls_cert))


@functools.cache
def _console_url(listen: str, tls: bool) -> str | None:
    """Worked out once: a wildcard address asks the resolver for this machine's name, too dear
    for a route that monitors poll."""
    if not listen or listen.startswith("unix:"):
        return None
    host, _, port = listen.rpartition(":")
    if host.strip("[]") in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    scheme = "https" if tls else "http"
    return f"{scheme}://{host}:{port}/console/"


def _gpu_fields(state: State, node: Node) -> dict[str, Any]:
    held = holders(state, node)
    devices = []
    for gpu in node.gpus:
        device: dict[str, Any] = {
            "index": gpu.index,
            "id": gpu.id,
            "model": gpu.model,
            "memoryMiB": gpu.memory_mib,
        }
        if gpu.id in node.gpus_out:
            device.update(status="OUT_OF_SERVICE", reason=node.gpus_out[gpu.id])
        if gpu.id in held:
            device.update(jobId=held[gpu.id].rpartition("/")[0], attemptId=held[gpu.id])
            device.setdefault("status", "IN_USE")
        device.setdefault("status", "FREE")
        devices.append(device)
    fields: dict[str, Any] = {"gpuDevices": devices, "gpuIsolation": node.gpu_isolation}
    if node.gpu_isolation_reason:
        fields["gpuIsolationReason"] = node.gpu_isolation_reason
    return fields


async def route(
    call: Call, method: str, path: str, body: bytes, query: dict[str, list[str]]
) -> tuple[int, Any]:
    parts = [unquote(p) for p in path[len("/hpcbatch/v1/") :].strip("/").split("/")]
    if parts == ["health"]:
        return 200, {"status": "ok", "version": VERSION, "console": console_url(call.head.config)}
    if parts == ["whoami"] and method == "GET":
        return 200, _whoami(call)
    if parts[0] == "users":
        return 200, await users_routes.route(call, method, parts[1:], body)
    if parts == ["nodes"] and method == "GET":
        nodes = sorted(call.head.state.nodes.values(), key=lambda n: n.name)
        return 200, {"nodes": [_node_doc(call, n) for n in nodes]}
    if parts == ["nodes"] and method == "POST":
        return 200, await _add_nodes(call, body)
    if parts == ["top"] and method == "GET":
        return 200, _top(call, query)
    if len(parts) == 3 and parts[0] == "nodes" and method == "POST":
        return 200, await _node_action(call, parts[1], parts[2], body)
    if len(parts) == 3 and parts[0] == "jobs" and method == "GET":
        job = call.head.state.jobs.get(parts[1])
        if job is None:
            raise NotFoundError(f"jobId: no job {parts[1]!r}")
        if parts[2] == "logs":
            require_job_owner(call.principal, job, "logs", "read the logs of")
            return 200, await _logs(call, job, query)
        if parts[2] == "history":
            return 200, await _history(call, job)
    raise NotFoundError(f"no route for {method} {path}")


class AgentTimeoutError(TransportError):
    """An agent did not answer in time: the head is a gateway that timed out (HTTP 504)."""

    http_status = 504


class NodeUnreachableError(TransportError):
    """The node's agent is not connected now: try again later (HTTP 503), not a head bug."""

    http_status = 503


MAX_REASON = 1024


def _reason(body: bytes) -> str:
    reason = json_object(body).get("reason")
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON or "\x00" in reason:
        raise ValidationError(
            "reason", f"must be a string of 0-{MAX_REASON:,} characters without a NUL"
        )
    if SURROGATES.search(reason):  # a "\\ud800" escape: no character, and no store can write it
        raise ValidationError("reason", SURROGATE_RULE)
    return reason


def _whoami(call: Call) -> dict[str, Any]:
    principal = call.principal
    doc: dict[str, Any] = {
        "user": principal.user,
        "uid": principal.uid,
        "admin": principal.admin,
        "via": principal.via,
    }
    if principal.key_id is not None:
        doc.update(accessKeyId=principal.key_id, apiUser=principal.api_user)
    return doc


MAX_HOSTS_PER_ADD = 1000


async def _add_nodes(call: Call, body: bytes) -> dict[str, Any]:
    require_admin(call.principal, "nodes", "add hosts to a compute environment")
    doc = json_object(body)
    ce = doc.get("computeEnvironment")
    if not isinstance(ce, str) or not ce:
        raise ValidationError("computeEnvironment", "is required: an UNMANAGED CE's name")
    raw = doc.get("hosts")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_HOSTS_PER_ADD:
        raise ValidationError("hosts", f"must be a list of 1-{MAX_HOSTS_PER_ADD} host tables")
    hosts = [parse_host(f"hosts[{i}]", table) for i, table in enumerate(raw)]
    await call.head.ce_hosts.add(ce, hosts)
    return {"computeEnvironment": ce, "added": [h.name for h in hosts]}


async def _node_action(call: Call, name: str, action: str, body: bytes) -> dict[str, Any]:
    require_admin(call.principal, f"nodes/{action}", "drain, resume or remove nodes")
    reason = _reason(body)
    if action == "remove":
        await call.head.ce_hosts.remove(name)
        node = call.head.state.nodes.get(name)
        return {"node": _node_doc(call, node) if node is not None else {"name": name}}
    if action == "drain":
        event: ev.Event = ev.DrainNode(
            cause=call.cause, now=now_ms(), node=name, reason=reason or "drained by admin"
        )
    elif action == "resume":
        event = ev.ResumeNode(cause=call.cause, now=now_ms(), node=name)
    else:
        raise NotFoundError(f"no node action {action!r}; use drain, resume or remove")
    await call.head.loop.call(event)
    return {"node": _node_doc(call, call.head.state.nodes[name])}


def _node_doc(call: Call, node: Node) -> dict[str, Any]:
    session = call.head.dispatcher.sessions.get(node.name)  # connected: its agent's build
    doc = node_doc(call.head.state, node, None if session is None else session.agent_version)
    if session is not None and session.slurm is not None:  # a SLURM bridge: Slurm's nodes
        doc["slurm"] = slurm_doc(session.slurm)
    return doc


def slurm_doc(view: dict[str, Any]) -> dict[str, Any]:
    nodes = [
        {
            "name": n["name"],
            "state": n["state"],
            "vcpus": n["cpus"],
            "memoryMiB": n["memory_mib"],
            "partition": n["partition"],
        }
        for n in view["nodes"]
    ]
    return {"nodes": nodes, "trouble": view.get("trouble")}


def _top(call: Call, query: dict[str, list[str]]) -> dict[str, Any]:
    limit = _int(query, "jobs", 1, top.MAX_JOBS, str(top.MAX_JOBS)) or top.DEFAULT_JOBS
    nodes = sorted(call.head.state.nodes.values(), key=lambda n: n.name)
    return top.top_doc(call.head.state, [_node_doc(call, n) for n in nodes], limit, now_ms())


def _int(query: dict[str, list[str]], name: str, low: int, high: int, shown: str) -> int | None:
    """The parameter ``name`` as an integer from ``low`` to ``high`` (``shown`` in the
    message), None when absent; anything else is a 400 naming it."""
    values = query.get(name)
    if values is None:
        return None
    rule = f"must be an integer from {low} to {shown}"
    if len(values) > 1:
        raise ValidationError(name, f"{rule}, given once (got {len(values)} values)")
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and at most 19 of
    # them before int() is asked: a log offset is bounded by 2**62 before it reaches an agent.
    text = values[0]
    if not re.fullmatch(r"[0-9]{1,19}", text) or not low <= int(text) <= high:
        raise ValidationError(name, f"{rule} (got {text[:40]!r})")
    return int(text)


async def _logs(call: Call, job: Job, query: dict[str, list[str]]) -> dict[str, Any]:
    if not job.attempts:
        raise ClientError(f"job {job.job_id} has not started yet; it has no logs")
    count = len(job.attempts)
    number = _int(query, "attempt", 1, count, str(count)) or count
    offset = _int(query, "offset", 0, MAX_LOG_OFFSET, "2**62") or 0
    attempt = job.attempts[number - 1]
    session = call.head.dispatcher.sessions.get(attempt.node)
    if session is None:
        raise NodeUnreachableError(
            f"node {attempt.node} is not connected; its logs are unreachable until it is"
        )
    aid = attempt_id(job.job_id, number)
    try:
        reply = await session.read_log(aid, offset, LOG_CHUNK)
    except TimeoutError:
        raise AgentTimeoutError(
            f"node {attempt.node} did not answer for the logs of {aid} within "
            f"{session.log_timeout_s:g} s; try again"
        ) from None
    if reply.get("error"):
        raise NotFoundError(f"attempt {aid}: {reply['error']}")
    live = job.status in ACTIVE and number == len(job.attempts)
    return {
        "jobId": job.job_id,
        "attempt": number,
        "logStreamName": attempt.log_stream,
        "data": reply["data"],
        "nextOffset": reply["next_offset"],
        "complete": bool(reply["complete"]) and not live,
    }


async def _history(call: Call, job: Job) -> dict[str, Any]:
    entries = await call.head.history(job.job_id)
    events = [
        {"time": e.time_ms, "cause": e.cause, "event": e.event, "detail": e.detail} for e in entries
    ]
    return {"jobId": job.job_id, "events": events}
