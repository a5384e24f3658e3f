"""Recognising an agent's job processes among the host's, after an agent restart.

Vocabulary:
    job        the first process of an attempt, spawned by the agent in a session of its
               own (so its pid is also its process group and session id), with two
               variables in its environment: ``HPCBATCH_ATTEMPT_ID`` and
               ``HPCBATCH_AGENT_DIR`` (the agent's state dir).
    identity   a pid names the same process only while its start time (``keeper.start_ticks``)
               is unchanged: the spool journals both, so a reused pid is never taken for a job.
    claim      a session leader whose environment names this state dir and an attempt. Any
               host user can start one, so a claim alone proves nothing: an agent adopts a
               claimed job only for an attempt whose intent it journaled before the spawn and
               only when the process runs as the uid that intent names (``adoptable``).
Everything here reads /proc only. Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .keeper import start_ticks
from .procfs import stat_fields

ATTEMPT_VAR = "HPCBATCH_ATTEMPT_ID"
DIR_VAR = "HPCBATCH_AGENT_DIR"


def job_alive(pid: int, ticks: int | None) -> bool:
    """The process journaled as (pid, ticks) still exists (a zombie counts: its end is not
    recorded yet). Without ticks (an older journal), any process with that pid counts."""
    found = start_ticks(pid)
    return found is not None and (ticks is None or found == ticks)


def _session_leader(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z" and int(fields[3]) == pid


@dataclass(frozen=True)
class Claim:
    """A live session leader whose environment names this agent's state dir."""

    attempt_id: str
    pid: int
    uid: int | None  # its real uid (None: it vanished while being read)
    ticks: int


def process_uid(pid: int) -> int | None:
    """The real uid of a process, from /proc/<pid>/status, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def scan_claims(state_dir: str) -> list[Claim]:
    """Every live session leader whose environment names ``state_dir`` and an attempt."""
    marker = f"{DIR_VAR}={state_dir}".encode()
    attempt_prefix = f"{ATTEMPT_VAR}=".encode()
    claims: list[Claim] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        if marker not in variables:
            continue
        pid = int(entry)
        attempt = next((v for v in variables if v.startswith(attempt_prefix)), None)
        if attempt is None or not _session_leader(pid):
            continue
        attempt_id = attempt[len(attempt_prefix) :].decode(errors="replace")
        claims.append(Claim(attempt_id, pid, process_uid(pid), start_ticks(pid) or 0))
    return claims


def find_jobs(state_dir: str) -> dict[str, int]:
    """attempt id -> pid of every live job whose environment names ``state_dir``, whoever
    runs it: for cleaning up, never for adopting (see ``adoptable``)."""
    found: dict[str, int] = {}
    for claim in sorted(scan_claims(state_dir), key=lambda c: c.ticks, reverse=True):
        found[claim.attempt_id] = claim.pid  # the earliest wins: a job's setsid child is not it
    return found


def adoptable(
    claims: list[Claim], intents: Mapping[str, int]
) -> tuple[dict[str, int], list[tuple[Claim, str]]]:
    """(attempt id -> pid to adopt, [(refused claim, why)]). ``intents`` maps each attempt
    journaled as about to be spawned, and never journaled as started, to the uid its job
    was to run as. Among a valid attempt's claims the earliest started is the job."""
    adopted: dict[str, Claim] = {}
    refused: list[tuple[Claim, str]] = []
    for claim in sorted(claims, key=lambda c: c.ticks):
        expected = intents.get(claim.attempt_id)
        if expected is None:
            refused.append((claim, "no intent to start this attempt is journaled"))
        elif claim.uid != expected:
            refused.append((claim, f"it runs as uid {claim.uid}, the attempt's job as {expected}"))
        elif claim.attempt_id in adopted:
            earlier = adopted[claim.attempt_id].pid
            refused.append((claim, f"process {earlier} started earlier for the same attempt"))
        else:
            adopted[claim.attempt_id] = claim
    return {attempt_id: claim.pid for attempt_id, claim in adopted.items()}, refused
