"""Recognising an agent's job processes among the host's, after an agent restart.

Vocabulary:
    job        the first process of an attempt, spawned by the agent in a session of its
               own (so its pid is also its process group and session id), with two
               variables in its environment: ``HPCBATCH_ATTEMPT_ID`` and
               ``HPCBATCH_AGENT_DIR`` (the agent's state dir).
    identity   a pid names the same process only while its start time (``keeper.start_ticks``)
               is unchanged: the spool journals both, so a reused pid is never taken for a job.
Everything here reads /proc only. Standard library only.
"""

from __future__ import annotations

import os

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


def find_jobs(state_dir: str) -> dict[str, int]:
    """attempt id -> pid of every live job whose environment names ``state_dir``."""
    marker = f"{DIR_VAR}={state_dir}".encode()
    attempt_prefix = f"{ATTEMPT_VAR}=".encode()
    found: dict[str, int] = {}
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
        earlier = found.get(attempt_id)
        if earlier is None or (start_ticks(pid) or 0) < (start_ticks(earlier) or 0):
            found[attempt_id] = pid  # a job's own setsid child is not the job
    return found
