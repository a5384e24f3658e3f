"""Jobs of a SLURM bridge that name a user (AWS ``containerProperties.user``), made ready to run
as that user in Slurm (standard library).

Vocabulary:
    switch     a root bridge submits the job with ``sbatch --uid --gid``; Slurm runs it as the
               user, with their HOME, USER and LOGNAME (as every compute environment sets).
    files      slurmstepd opens the job's ``-o`` as the user: its log is made first, 0600 and
               theirs, in the bridge's ``work/`` (0711: reachable by path, not listable;
               ``logs/`` stays 0700), and its work dir given to them. Never through a
               symlink.
    refused    a user unknown on the bridge's host, or any user but the bridge's own for a
               bridge that is not root: the job fails to start with the reason (users.py),
               never runs as the bridge's user.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from . import protocol as p
from .users import RunAs, run_as_cached

Fail = Callable[[str, str], None]  # (attempt id, reason): it fails to start


def give(path: str, who: RunAs, directory: bool) -> None:
    """Make ``path`` (a 0600 file or a 0700 dir, never through a symlink) and hand it to
    ``who``."""
    if directory:
        os.makedirs(path, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_APPEND, 0o600)
    try:
        os.fchown(fd, who.uid, who.gid)
    finally:
        os.close(fd)


def prepare(who: RunAs, log_path: str, work_dir: str | None) -> None:
    """The job's log and (where it has no working directory of its own) work dir, theirs."""
    give(log_path, who, directory=False)
    if work_dir is not None:
        give(work_dir, who, directory=True)


def sbatch_options(who: RunAs | None) -> list[str]:
    """sbatch's options that run a job as ``who`` (root's privilege in Slurm)."""
    return [] if who is None else [f"--uid={who.uid}", f"--gid={who.gid}"]


def ready(
    batch: list[p.AttemptSpec],
    user_log_path: Callable[[str], str],
    work_path: Callable[[str], str],
    fail: Fail,
) -> tuple[list[p.AttemptSpec], dict[str, RunAs]]:
    """The batch, each job naming a user made ready to run as them: its log (``user_log_path``)
    and work dir (``work_path``, where it has no working directory of its own) made and given
    to them, their HOME, USER and LOGNAME in its variables; and who each job switches to. A
    user who cannot be run as fails its job to start (``fail``), never runs as the bridge's."""
    users: dict[str, RunAs | str] = {}
    kept: list[p.AttemptSpec] = []
    switch: dict[str, RunAs] = {}
    for spec in batch:
        attempt_id = spec["attempt_id"]
        who = run_as_cached(spec.get("user"), users)
        if isinstance(who, str):
            fail(attempt_id, who)
            continue
        if who is None:
            kept.append(spec)
            continue
        try:
            if who.switch:
                work = None if spec["cwd"] else work_path(attempt_id)
                prepare(who, user_log_path(attempt_id), work)
                switch[attempt_id] = who
        except OSError as error:
            fail(
                attempt_id,
                f"CannotStartContainerError: cannot prepare its files for {who.name}: {error}",
            )
            continue
        kept.append({**spec, "env": {**spec["env"], **who.env}})
    return kept, switch
