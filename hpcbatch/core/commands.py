"""Commands: what ``step`` asks the outside world to do, as frozen values.

The loop makes the state that produced a batch of commands durable *before* it dispatches them,
so a launch is never sent for a job the head could forget.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    cause: str
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchAttempt(Command):
    attempt_id: str
    job_id: str
    command: tuple[str, ...]
    environment: tuple[tuple[str, str], ...]
    cpu_milli: int
    memory_mib: int
    gpus: tuple[str, ...]  # GPU ids: CUDA_VISIBLE_DEVICES in environment names them
    timeout_s: int | None
    user: str | None = None
    workdir: str | None = None  # None: the agent's private per-attempt directory
    # "<parent id>/<try>" for a node of a multi-node job: the head derives the gang's launch
    # key from it (the same for every node of one try); the key itself never enters the core.
    gang_try: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KillAttempt(Command):
    attempt_id: str
    reason: str
