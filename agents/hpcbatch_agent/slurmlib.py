"""pyslurm, where it imports and matches the cluster's Slurm: the bridge's read of Slurm's queue
(each poll, its hot path) through libslurm, without a process per read.

PyPI's pyslurm tracks only the newest Slurm; one built for another release must not read this
cluster's (libslurm's structures change between releases). So it is used only when it imports
and its ``slurm_api_version()`` has the same major and minor release as ``scontrol
--version``; else the bridge reads Slurm through its CLI (slurmcli.py), which needs nothing.
Submissions, cancels and how a job ended always go through the CLI: pyslurm 22.5's job records
carry an ``exit_code`` whose status and signal leak from the records read before it (its
``get_job_ptr`` sets them once for the whole loop: a job that exited 3 read as ``3:15``), so
they are never read from it.

Vocabulary:
    record   one of pyslurm's job dicts (``pyslurm.job().get()``): a pending array's tasks are
             ONE record whose ``array_task_str`` holds their ranges (``3-99%8``); each is a
             job of its own here, as ``squeue -r`` lists them (``<array job>_<task>``).
Standard library, plus pyslurm where present.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from . import slurmcli
from .slurmcli import SlurmError, SlurmJob

_VERSION = re.compile(r"(\d+)\.(\d+)")
PROBE = "import pyslurm; print(*pyslurm.slurm_api_version()[:2])"
API_VAR = "HPCBATCH_SLURM_API"  # "cli": never pyslurm (the CLI tests); default: pyslurm if it fits


class Reader:
    """Slurm's queue and ended jobs, read through pyslurm (the same answers as slurmcli's)."""

    def __init__(self, module: Any) -> None:
        self.pyslurm = module

    def _call(self, what: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except ValueError as error:  # pyslurm's errors carry Slurm's message first
            said = error.args[0] if error.args else str(error)
            raise SlurmError([f"pyslurm {what}"], str(said)) from None

    def queue(self) -> list[SlurmJob]:
        """What ``squeue -r`` lists: every job and array task still queued or running."""
        records = self._call("job().get()", lambda: self.pyslurm.job().get())
        return [job for record in records.values() for job in jobs_of(record) if job.active]

    def accounting(self) -> bool:
        """As ``slurmcli.accounting``: Slurm keeps accounting in slurmdbd."""
        found = self._call("config().get()", lambda: self.pyslurm.config().get())
        return bool(found.get("accounting_storage_type") == "accounting_storage/slurmdbd")


def load(run: slurmcli.Run, choice: str = "auto") -> tuple[Reader | None, str]:
    """A Reader where pyslurm imports and matches this cluster's Slurm, and the words that say
    which way the bridge reads Slurm (for its log). ``choice`` (``API_VAR``): ``cli`` never
    tries pyslurm; anything else tries it. libslurm ends the process that cannot read Slurm's
    configuration (its ``fatal``, after retrying for up to 60 s), so pyslurm is first imported
    by a child (``PROBE``, given 10 s), and in the bridge only if that child could."""
    if choice == "cli":
        return None, f"Slurm's CLI ({API_VAR}=cli)"
    if importlib.util.find_spec("pyslurm") is None:
        return None, "Slurm's CLI (pyslurm is not installed)"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=10, check=False
        )
        out = run(["scontrol", "--version"], None)[1]
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"Slurm's CLI (cannot try pyslurm: {error})"
    if probe.returncode != 0:
        said = (probe.stderr.strip().splitlines() or [f"exit status {probe.returncode}"])[-1]
        return None, f"Slurm's CLI (pyslurm does not load: {said})"
    found = _VERSION.search(out)
    ours = (int(found.group(1)), int(found.group(2))) if found else None
    theirs = tuple(int(word) for word in probe.stdout.split()[:2])
    if ours != theirs:
        return None, f"Slurm's CLI (pyslurm is built for Slurm {theirs}, this is {out.strip()})"
    return Reader(importlib.import_module("pyslurm")), f"pyslurm (Slurm {out.strip()})"


def jobs_of(record: dict[str, Any]) -> list[SlurmJob]:
    """The jobs one record stands for (itself, or each task of a pending array's ranges), as
    the queue shows them: no end, no exit code (never read from pyslurm: see above)."""
    state = str(record.get("job_state") or "")
    array_id = record.get("array_job_id")
    task = record.get("array_task_id")
    ranges = record.get("array_task_str")
    if array_id and ranges:
        ids = [f"{array_id}_{index}" for index in task_indexes(str(ranges))]
    elif array_id and task is not None:
        ids = [f"{array_id}_{task}"]
    else:
        ids = [str(record.get("job_id"))]
    start = record.get("start_time") or 0
    return [
        SlurmJob(
            slurm_id=slurm_id,
            name=str(record.get("name") or ""),
            state=state,
            reason=str(record.get("state_reason") or "None"),
            nodes=str(record.get("nodes") or ""),
            started_at_ms=start * 1000
            if start and state not in ("PENDING", "CONFIGURING")
            else None,
            partition=str(record.get("partition") or ""),
        )
        for slurm_id in ids
    ]


def task_indexes(ranges: str) -> list[int]:
    """``0-3,7,9-11:2%4`` (Slurm's array task string: ranges, steps, a throttle) as indexes."""
    indexes: list[int] = []
    for part in ranges.split("%", 1)[0].split(","):
        span, _, step = part.partition(":")
        first, _, last = span.partition("-")
        if not first.isdigit():
            continue
        stop = int(last) if last.isdigit() else int(first)
        indexes.extend(range(int(first), stop + 1, int(step) if step.isdigit() else 1))
    return indexes
