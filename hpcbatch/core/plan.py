"""What one scheduling pass proposes: placements, and the reservations that guard backfill.

A **placement** starts one job on one node (its GPU ids picked). ``backfill`` is true when the
job starts ahead of an earlier job in the global order that could not start; ``reason`` records
why, for the job's story. The placements of one multi-node job (``gang``, all its nodes) come
together and are started all or none. A **reservation** holds a node for the first blocked job of a queue
from ``at`` (epoch ms; None = unknown, when running jobs have no timeout).
"""

from __future__ import annotations

from dataclasses import dataclass

from hpcbatch.core.model import Resources


@dataclass(frozen=True, slots=True)
class Placement:
    job_id: str
    node: str
    gpus: tuple[str, ...]  # GPU ids
    backfill: bool
    reason: str
    gang: str | None = None  # a node job's parent: the loop starts a gang whole or not at all


@dataclass(frozen=True, slots=True)
class Reservation:
    job_id: str
    node: str
    at: int | None
    need: Resources


@dataclass(frozen=True, slots=True)
class Preemption:
    """Stop attempt ``attempt`` of ``job_id`` (a job borrowing beyond its quota share, or a
    lower-priority job of a share with inSharePreemption) so that ``for_job`` can start;
    ``reason`` becomes the attempt's reason (core/preemption.py)."""

    job_id: str
    attempt: int
    node: str
    for_job: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    placements: tuple[Placement, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    preemptions: tuple[Preemption, ...] = ()
