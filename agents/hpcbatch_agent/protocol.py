"""The head<->agent protocol, version 1: pure builders, a codec and validators.

Vocabulary:
    message   one JSON object on one UTF-8 line, always carrying ``"v"`` (the protocol
              version) and ``"type"``.
    head      the scheduler side; it sends hello, launch, kill, ack, read_log, shutdown.
    agent     the compute-host side; it sends hello, updates, heartbeat, log_data, error.
    attempt   one execution of one job on one node, named by an opaque ``attempt_id``
              chosen by the head (it may contain ':', '#', '/').
    update    the state of an attempt as the agent last saw it: RUNNING, EXITED or
              FAILED_TO_START, with pid, times (epoch milliseconds) and result; or, from a
              SLURM bridge, QUEUED (waiting in Slurm's queue, the reason in Slurm's words).
    node      what the agent offers: vCPUs, memory, GPUs, cgroup support, host name.
    GPU id    how a GPU is named across the wire (``gpu_id``): its UUID as nvidia-smi prints
              it (``GPU-...``, ``MIG-...``) where known, else its index as a decimal string.

Nothing here does I/O: both ends import this one module (the head through
``hpcbatch.protocol``), so the wire format has a single source of truth; its types and
constants live in wiretypes.py and are re-exported here. Standard library only, because the
agent runs on bare compute hosts. docs/protocol.md describes each
message in prose.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .wiretypes import (
    AGENT_VERSION,
    ATTEMPT_STATES,
    EXITED,
    FAILED_TO_START,
    PROTOCOL_VERSION,
    QUEUED,
    RUNNING,
    TIMEOUT_REASON,
    AttemptSpec,
    AttemptUpdate,
    GpuInfo,
    Message,
    MessageError,
    NodeInfo,
)
from .wirevalues import (
    GPU_ID_RULE,
    MAX_LOG_OFFSET,
    MAX_TIMEOUT_S,
    attempt_value_problem,
    in_range,
    is_gpu_id,
)

# --- codec -------------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as one line; ensure_ascii=False keeps non-ASCII log text compact."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes | str, loads: Callable[[bytes | str], Any] = json.loads) -> Message:
    """Parse one line into a message whose ``v`` and ``type`` are sound; ``loads`` is a JSON
    reader that reads what ``json.loads`` does (the head passes a faster one).

    Raises MessageError: fatal for another protocol version, non-fatal otherwise."""
    try:
        message = loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MessageError(f"malformed message: not valid JSON ({exc})") from None
    if not isinstance(message, dict):
        raise MessageError("malformed message: not a JSON object")
    if "v" not in message:
        raise MessageError("malformed message: missing field 'v'")
    version = message["v"]
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise MessageError(version_error_reason(version), fatal=True)
    if not isinstance(message.get("type"), str):
        raise MessageError("malformed message: missing or non-string field 'type'")
    return message


def version_error_reason(version: object) -> str:
    return f"protocol version {version} not supported; agent speaks {PROTOCOL_VERSION}"


# --- field checkers ------------------------------------------------------------------------

Checker = Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _optional(check: Checker) -> Checker:
    return lambda value: value is None or check(value)


def _list_of(check: Checker) -> Checker:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_command(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(_is_str(v) for v in value)


def _is_state(value: Any) -> bool:
    return value in ATTEMPT_STATES


def is_cpu_seconds(value: Any) -> bool:
    """A count of CPU seconds: a finite number, not negative (JSON may spell it as an int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_LOG_OFFSET  # a float() of it stays exact enough
    return math.isfinite(value) and value >= 0


def _is_cgroups(value: Any) -> bool:
    return value in ("none", "v1", "v2")


GPU_ISOLATIONS = ("devices", "env")


def gpu_id(gpu: GpuInfo) -> str:
    """The GPU's id on the wire: its UUID where known (indices change with
    ``CUDA_DEVICE_ORDER`` and across reboots), else its index as a decimal string."""
    uuid = gpu["uuid"]
    return uuid if uuid else str(gpu["index"])


ATTEMPT_FIELDS: dict[str, Checker] = {
    "attempt_id": _is_str,
    "command": _is_command,
    "env": _is_str_map,
    "cwd": _optional(_is_str),
    "timeout_s": _optional(_is_int),
    "gpus": lambda v: isinstance(v, list),  # each item: _gpus_problem
    "vcpus": _is_int,
    "memory_mib": _is_int,
}

UPDATE_FIELDS: dict[str, Checker] = {
    "attempt_id": _is_str,
    "state": _is_state,
    "pid": _optional(_is_int),
    "started_at_ms": _optional(_is_int),
    "stopped_at_ms": _optional(_is_int),
    "exit_code": _optional(_is_int),
    "signal": _optional(_is_int),
    "reason": _optional(_is_str),
    "log_path": _is_str,
}

GPU_FIELDS: dict[str, Checker] = {
    "index": _is_int,
    "uuid": _optional(is_gpu_id),
    "name": _optional(_is_str),
    "memory_mib": _optional(_is_int),
}

NODE_FIELDS: dict[str, Checker] = {
    "name": _is_str,
    "vcpus": _is_int,
    "memory_mib": _is_int,
    "gpus": lambda v: isinstance(v, list),
    "cgroups": _is_cgroups,
    "hostname": _is_str,
}

HEAD_MESSAGES: dict[str, dict[str, Checker]] = {
    "hello": {"head": _is_str},
    "launch": {"attempts": lambda v: isinstance(v, list)},
    "kill": {"attempt_id": _is_str, "reason": _is_str},
    "ack": {"attempt_ids": _list_of(_is_str)},
    "read_log": {"req": _is_int, "attempt_id": _is_str, "offset": _is_int, "max_bytes": _is_int},
    "shutdown": {"kill_jobs": _is_bool},
}

AGENT_MESSAGES: dict[str, dict[str, Checker]] = {
    "hello": {
        "agent_version": _is_str,
        "node": lambda v: isinstance(v, dict),
        "attempts": lambda v: isinstance(v, list),
    },
    "updates": {"updates": lambda v: isinstance(v, list)},
    "heartbeat": {"time_ms": _is_int, "running": _is_int},
    "log_data": {
        "req": _is_int,
        "attempt_id": _is_str,
        "data": _is_str,
        "next_offset": _is_int,
        "complete": _is_bool,
    },
    "error": {"reason": _is_str},
    "gpus": {"gpus": lambda v: isinstance(v, list)},
    "slurm": {"nodes": lambda v: isinstance(v, list), "trouble": _optional(_is_str)},
}

SLURM_NODE_FIELDS: dict[str, Checker] = {
    "name": _is_str,
    "state": _is_str,
    "cpus": _is_int,
    "memory_mib": _is_int,
    "partition": _is_str,
}


def _check_fields(obj: Any, fields: Mapping[str, Checker], where: str) -> None:
    if not isinstance(obj, dict):
        raise MessageError(f"malformed message: {where} is not an object")
    for name, check in fields.items():
        if name not in obj:
            raise MessageError(f"malformed message: {where} lacks field '{name}'")
        if not check(obj[name]):
            raise MessageError(f"malformed message: {where} has a bad '{name}': {obj[name]!r}")


def _check_items(items: list[Any], fields: Mapping[str, Checker], where: str) -> None:
    for index, item in enumerate(items):
        _check_fields(item, fields, f"{where}[{index}]")


def attempt_problem(item: Any, where: str) -> str | None:
    """Why one attempt of a launch cannot run (its types, then its values), or None.

    Checked per attempt, so one bad attempt fails alone and the rest of its batch runs."""
    try:
        _check_fields(item, ATTEMPT_FIELDS, where)
    except MessageError as exc:
        return exc.reason
    problem = attempt_value_problem(item)
    return None if problem is None else f"malformed message: {where}: {problem}"


def read_log_problem(message: Message) -> str | None:
    """Why a well-typed read_log cannot be served (its offset or size), or None."""
    return in_range("offset", message["offset"], 0, MAX_LOG_OFFSET) or in_range(
        "max_bytes", message["max_bytes"], 0, MAX_LOG_OFFSET
    )


def check_head_envelope(message: Message) -> None:
    """Raise MessageError unless the message's type and top-level fields are sound; a
    launch's attempts are left to ``attempt_problem``, one at a time."""
    kind = message["type"]
    fields = HEAD_MESSAGES.get(kind)
    if fields is None:
        raise MessageError(f"malformed message: unknown head message type {kind!r}")
    _check_fields(message, fields, kind)


def check_head_message(message: Message) -> None:
    """Raise MessageError unless ``message`` (already decoded) is a valid head message,
    every attempt of a launch and the bounds of a read_log included."""
    check_head_envelope(message)
    kind = message["type"]
    if kind == "launch":
        for index, item in enumerate(message["attempts"]):
            problem = attempt_problem(item, f"launch.attempts[{index}]")
            if problem is not None:
                raise MessageError(problem)
    elif kind == "read_log":
        problem = read_log_problem(message)
        if problem is not None:
            raise MessageError(f"malformed message: read_log: {problem}")


def check_agent_message(message: Message) -> None:
    """Raise MessageError unless ``message`` (already decoded) is a valid agent message."""
    kind = message["type"]
    fields = AGENT_MESSAGES.get(kind)
    if fields is None:
        raise MessageError(f"malformed message: unknown agent message type {kind!r}")
    _check_fields(message, fields, kind)
    if kind == "hello":
        _check_optional(message, "agent_build", _is_str, "hello")
        node = message["node"]
        _check_fields(node, NODE_FIELDS, "hello.node")
        _check_gpus(node, "hello.node")
        port = node.get("launch_port")
        if port is not None and not (_is_int(port) and 0 < port < 65536):
            raise MessageError(f"malformed message: hello.node has a bad 'launch_port': {port!r}")
        _check_optional(node, "gpu_isolation", lambda v: v in GPU_ISOLATIONS, "hello.node")
        _check_optional(node, "gpu_isolation_reason", _is_str, "hello.node")
        _check_updates(message["attempts"], "hello.attempts")
    elif kind == "updates":
        _check_updates(message["updates"], "updates.updates")
    elif kind == "gpus":
        _check_gpus(message, "gpus")
    elif kind == "slurm":
        _check_items(message["nodes"], SLURM_NODE_FIELDS, "slurm.nodes")
    elif kind == "heartbeat":
        _check_optional(message, "cpu_s", is_cpu_seconds, "heartbeat")


def _check_updates(items: list[Any], where: str) -> None:
    for index, item in enumerate(items):
        if not _update_fine(item):  # the slow, precise checks only to name what is wrong
            _check_fields(item, UPDATE_FIELDS, f"{where}[{index}]")
            _check_optional(item, "cpu_s", is_cpu_seconds, f"{where}[{index}]")


_OPTIONAL_INTS = ("pid", "started_at_ms", "stopped_at_ms", "exit_code", "signal")


def _update_fine(item: Any) -> bool:
    """``UPDATE_FIELDS`` and ``cpu_s`` in one function: the head checks every update of every
    attempt (several a job), and the checker table's calls were ~7 % of its CPU at 1,000 nodes.
    ``type(v) is int`` is ``_is_int`` for decoded JSON (no int subclass but bool)."""
    try:
        if not (
            type(item["attempt_id"]) is str
            and item["state"] in ATTEMPT_STATES
            and type(item["log_path"]) is str
            and ((reason := item["reason"]) is None or type(reason) is str)
        ):
            return False
        for name in _OPTIONAL_INTS:
            value = item[name]
            if value is not None and type(value) is not int:
                return False
    except (KeyError, TypeError):
        return False
    return "cpu_s" not in item or is_cpu_seconds(item["cpu_s"])


def _check_optional(obj: dict[str, Any], name: str, check: Checker, where: str) -> None:
    if name in obj and not check(obj[name]):
        raise MessageError(f"malformed message: {where} has a bad '{name}': {obj[name]!r}")


def _check_gpus(obj: dict[str, Any], where: str) -> None:
    """A node's GPUs and their reason, in a hello's node or a ``gpus`` message."""
    _check_items(obj["gpus"], GPU_FIELDS, f"{where}.gpus")
    _check_optional(obj, "gpus_reason", _is_str, where)


# --- builders: head -> agent -------------------------------------------------------------


def _message(kind: str, **fields: Any) -> Message:
    return {"v": PROTOCOL_VERSION, "type": kind, **fields}


def head_hello(head_id: str) -> Message:
    return _message("hello", head=head_id)


def attempt_spec(
    attempt_id: str,
    command: list[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: int | None = None,
    gpus: Iterable[str] = (),
    vcpus: int = 1,
    memory_mib: int = 0,
    user: str | None = None,
    launch_key: str | None = None,
) -> AttemptSpec:
    spec: AttemptSpec = {
        "attempt_id": attempt_id,
        "command": list(command),
        "env": dict(env or {}),
        "cwd": cwd,
        "timeout_s": timeout_s,
        "gpus": list(gpus),
        "vcpus": vcpus,
        "memory_mib": memory_mib,
    }
    if user is not None:
        spec["user"] = user  # optional: older agents ignore it, and this one checks it
    if launch_key is not None:
        spec["launch_key"] = launch_key  # only on the nodes of a multi-node gang
    return spec


def slurm_view(nodes: list[dict[str, Any]], trouble: str | None) -> Message:
    """A SLURM bridge's view of its partitions (sinfo's nodes) and, while Slurm does not
    answer, what it said (docs/slurm.md)."""
    return _message("slurm", nodes=nodes, trouble=trouble)


def launch(attempts: Iterable[AttemptSpec]) -> Message:
    return _message("launch", attempts=list(attempts))


def kill(attempt_id: str, reason: str) -> Message:
    return _message("kill", attempt_id=attempt_id, reason=reason)


def ack(attempt_ids: Iterable[str]) -> Message:
    return _message("ack", attempt_ids=list(attempt_ids))


def read_log(req: int, attempt_id: str, offset: int = 0, max_bytes: int = 65536) -> Message:
    return _message("read_log", req=req, attempt_id=attempt_id, offset=offset, max_bytes=max_bytes)


def shutdown(kill_jobs: bool) -> Message:
    return _message("shutdown", kill_jobs=kill_jobs)


# --- builders: agent -> head -------------------------------------------------------------


def agent_hello(
    node: NodeInfo, attempts: Iterable[AttemptUpdate], build: str | None = None
) -> Message:
    """The agent's hello; ``build`` is its build id (build.py), which the head compares with
    its own to replace an agent of another build (absent: an agent older than the field)."""
    message = _message("hello", agent_version=AGENT_VERSION, node=node, attempts=list(attempts))
    if build is not None:
        message["agent_build"] = build
    return message


def gpus_update(gpus: Iterable[GpuInfo], reason: str | None) -> Message:
    """The node's GPUs after a re-detection changed them or their reason (reason None: the
    last nvidia-smi run parsed and listed every configured GPU)."""
    message = _message("gpus", gpus=list(gpus))
    if reason is not None:
        message["gpus_reason"] = reason
    return message


def updates(items: Iterable[AttemptUpdate]) -> Message:
    return _message("updates", updates=list(items))


def heartbeat(time_ms: int, running: int, cpu_s: float | None = None) -> Message:
    """``cpu_s``: the CPU seconds this agent's jobs have used since it started (cpumeter.py);
    absent from older agents' heartbeats."""
    message = _message("heartbeat", time_ms=time_ms, running=running)
    if cpu_s is not None:
        message["cpu_s"] = cpu_s
    return message


def log_data(
    req: int,
    attempt_id: str,
    data: str,
    next_offset: int,
    complete: bool,
    error: str | None = None,
) -> Message:
    message = _message(
        "log_data",
        req=req,
        attempt_id=attempt_id,
        data=data,
        next_offset=next_offset,
        complete=complete,
    )
    if error is not None:
        message["error"] = error
    return message


def error(reason: str) -> Message:
    return _message("error", reason=reason)


def attempt_update(
    attempt_id: str,
    state: str,
    log_path: str,
    *,
    pid: int | None = None,
    started_at_ms: int | None = None,
    stopped_at_ms: int | None = None,
    exit_code: int | None = None,
    signal: int | None = None,
    reason: str | None = None,
    cpu_s: float | None = None,
) -> AttemptUpdate:
    update: AttemptUpdate = {
        "attempt_id": attempt_id,
        "state": state,
        "pid": pid,
        "started_at_ms": started_at_ms,
        "stopped_at_ms": stopped_at_ms,
        "exit_code": exit_code,
        "signal": signal,
        "reason": reason,
        "log_path": log_path,
    }
    if cpu_s is not None:
        update["cpu_s"] = cpu_s
    return update


def is_final(update: Mapping[str, Any]) -> bool:
    return update.get("state") in (EXITED, FAILED_TO_START)


def coalesce(updates: list[AttemptUpdate]) -> list[AttemptUpdate]:
    """The updates without those a later update of the same attempt supersedes: a RUNNING
    that a final update follows (that one carries the pid and start time too, so a job that
    starts and ends between two reports, the usual short job under load, costs one update,
    not two), and a QUEUED that any later update follows."""
    settled = {u["attempt_id"] for u in updates if u["state"] != RUNNING}
    if not settled:
        return updates
    if all(u["state"] != QUEUED for u in updates):  # every agent but a SLURM bridge
        return [u for u in updates if u["state"] != RUNNING or u["attempt_id"] not in settled]
    last = {u["attempt_id"]: index for index, u in enumerate(updates)}
    ended = {u["attempt_id"] for u in updates if u["state"] in (EXITED, FAILED_TO_START)}
    return [
        u
        for index, u in enumerate(updates)
        if not (u["state"] == RUNNING and u["attempt_id"] in ended)
        and not (u["state"] == QUEUED and last[u["attempt_id"]] != index)
    ]


__all__ = [
    "AGENT_MESSAGES",
    "AGENT_VERSION",
    "ATTEMPT_FIELDS",
    "ATTEMPT_STATES",
    "EXITED",
    "FAILED_TO_START",
    "GPU_ID_RULE",
    "GPU_ISOLATIONS",
    "HEAD_MESSAGES",
    "PROTOCOL_VERSION",
    "QUEUED",
    "RUNNING",
    "SLURM_NODE_FIELDS",
    "TIMEOUT_REASON",
    "UPDATE_FIELDS",
    "AttemptSpec",
    "AttemptUpdate",
    "GpuInfo",
    "Message",
    "MessageError",
    "NodeInfo",
    "ack",
    "agent_hello",
    "attempt_spec",
    "attempt_update",
    "MAX_LOG_OFFSET",
    "MAX_TIMEOUT_S",
    "attempt_problem",
    "check_agent_message",
    "check_head_envelope",
    "coalesce",
    "slurm_view",
    "check_head_message",
    "read_log_problem",
    "decode",
    "encode",
    "error",
    "gpu_id",
    "gpus_update",
    "head_hello",
    "heartbeat",
    "is_final",
    "is_gpu_id",
    "kill",
    "launch",
    "log_data",
    "read_log",
    "shutdown",
    "updates",
    "version_error_reason",
]
