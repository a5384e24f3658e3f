"""How an attempt whose Slurm job ended is reported: exit code, signal and reason from what
``scontrol show job`` remembers of it (standard library).

    COMPLETED, FAILED  the batch script's exit status or the signal that ended it (Slurm's
                       reason quoted where it says more than NonZeroExitCode)
    NODE_FAIL          ``Host lost: Slurm node N failed``: the head retries it as a host loss
    killed by hpcbatch the kill's reason (a cancel, a terminate, hpcbatch's own timeout)
    TIMEOUT            the timeout reason (Slurm's ``--time`` backstop struck first)
    OUT_OF_MEMORY      the OOM reason, as on every compute environment
    CANCELLED          by someone else than hpcbatch: said so
    anything else      ``Slurm ended the job: STATE (reason)``
    forgotten          ``lost``: the job ended while no bridge watched, and Slurm no longer
                       remembers it (``MinJobAge`` without accounting)
"""

from __future__ import annotations

from typing import Protocol

from . import protocol as p
from .cgroups import OOM_REASON
from .slurmcli import SlurmJob


class Killed(Protocol):
    slurm_id: str
    kill_reason: str | None


def outcome(job: SlurmJob | None, tracked: Killed) -> tuple[int | None, int | None, str | None]:
    """(exit_code, signal, reason) of an attempt whose Slurm job ended (``job`` None: Slurm
    no longer remembers it)."""
    if job is None:
        return (
            None,
            None,
            (
                f"lost: Slurm no longer knows job {tracked.slurm_id} (it ended while the bridge did "
                "not watch, and Slurm keeps an ended job only MinJobAge seconds without accounting)"
            ),
        )
    code, signum = (None, job.signal) if job.signal else (job.exit_code, None)
    said = f" ({job.reason})" if job.reason not in ("", "None", "NonZeroExitCode") else ""
    if job.state == "NODE_FAIL":
        return None, None, f"Host lost: Slurm node {job.nodes or '?'} failed (NODE_FAIL)"
    if tracked.kill_reason is not None:
        return None, signum, tracked.kill_reason
    if job.state == "TIMEOUT":
        return None, signum, p.TIMEOUT_REASON
    if job.state == "OUT_OF_MEMORY":
        return code, signum, OOM_REASON
    if job.state == "CANCELLED":
        return None, signum, f"cancelled in Slurm, not by hpcbatch{said}"
    if job.state in ("COMPLETED", "FAILED"):
        return code, signum, f"Slurm: {job.reason}" if said else None
    return code, signum, f"Slurm ended the job: {job.state}{said}"
