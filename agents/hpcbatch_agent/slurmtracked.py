"""An attempt the SLURM bridge has in Slurm, and its record in the spool (standard library).

Vocabulary:
    tracked    an attempt queued or running in Slurm: its Slurm id (``<job>`` or
               ``<array job>_<task>``; a multi-node job's nodes share one), its log, its timeout,
               what was last said of it, and a kill under way.
    record     the spool's start record of it: journaled when sbatch answers and again when it
               starts, read back by a restarted bridge (``tracked_of``).
    due        hpcbatch's own timeout: its Slurm start plus its timeout (``--time`` is only the
               backstop), none while it is being killed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Tracked:
    """An attempt in Slurm (queued or running)."""

    attempt_id: str
    slurm_id: str
    log_path: str
    timeout_s: int | None
    started_ms: int | None = None
    reason: str | None = None  # the queued reason last reported
    kill_reason: str | None = None
    cancelled: bool = False  # scancel taken by Slurm
    exit_file: str | None = None  # a node of a multi-node job: where its exit status shows


def record_of(tracked: Tracked, work_dir: str | None) -> dict[str, Any]:
    """The spool's start record of ``tracked``."""
    record: dict[str, Any] = {
        "attempt_id": tracked.attempt_id,
        "pid": None,
        "slurm_id": tracked.slurm_id,
        "log_path": tracked.log_path,
        "work_dir": work_dir,
        "timeout_s": tracked.timeout_s,
        "started_at_ms": tracked.started_ms,
        "kill_reason": tracked.kill_reason,
    }
    if tracked.exit_file is not None:
        record["exit_file"] = tracked.exit_file
    return record


def tracked_of(attempt_id: str, record: dict[str, Any]) -> Tracked:
    """A journaled attempt (one with a Slurm id), tracked again."""
    return Tracked(
        attempt_id,
        record["slurm_id"],
        record["log_path"],
        record.get("timeout_s"),
        record.get("started_at_ms"),
        kill_reason=record.get("kill_reason"),
        exit_file=record.get("exit_file"),
    )


def timeout_due(tracked: Tracked) -> int | None:
    if tracked.timeout_s is None or tracked.started_ms is None or tracked.kill_reason:
        return None
    return tracked.started_ms + tracked.timeout_s * 1000
