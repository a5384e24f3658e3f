"""Resolve what a request names — a name, ``name:revision`` or an ARN — to a state object.

Each resolver raises ``NotFoundError`` whose message names the field, so API errors say exactly
which reference was wrong.
"""

from __future__ import annotations

from hpcbatch.core.model import ComputeEnvironment, JobDefinition, JobQueue
from hpcbatch.core.state import State
from hpcbatch.errors import NotFoundError


def _name_from_arn(ref: str, resource: str) -> str:
    if ref.startswith("arn:"):
        head, _, name = ref.partition(f":{resource}/")
        if not name or not head:
            raise NotFoundError(f"{ref!r} is not a {resource} ARN")
        return name
    return ref


def resolve_queue(state: State, ref: str, field: str = "jobQueue") -> JobQueue:
    name = _name_from_arn(ref, "job-queue")
    queue = state.queues.get(name)
    if queue is None:
        known = ", ".join(sorted(state.queues)) or "none yet"
        raise NotFoundError(f"{field}: no job queue named {name!r} (queues: {known})")
    return queue


def resolve_ce(state: State, ref: str, field: str = "computeEnvironment") -> ComputeEnvironment:
    name = _name_from_arn(ref, "compute-environment")
    ce = state.ces.get(name)
    if ce is None:
        raise NotFoundError(f"{field}: no compute environment named {name!r}")
    return ce


def resolve_definition(state: State, ref: str, field: str = "jobDefinition") -> JobDefinition:
    """``name`` (latest ACTIVE revision), ``name:revision`` or a job-definition ARN."""
    text = _name_from_arn(ref, "job-definition")
    name, _, revision = text.partition(":")
    if not revision:
        latest = state.latest_definition(name)
        if latest is None:
            raise NotFoundError(f"{field}: no ACTIVE job definition named {name!r}")
        return latest
    if not revision.isdigit():
        raise NotFoundError(f"{field}: revision {revision!r} of {name!r} is not a number")
    found = state.definitions.get(name, {}).get(int(revision))
    if found is None:
        raise NotFoundError(f"{field}: no job definition {name}:{revision}")
    return found
