"""Checking a job's working directory before its spawn.

Vocabulary:
    working directory  where the job's process starts: the absolute path the head sent
               (the submission's ``workdir``), else the attempt's own work dir (workdirs.py).
    attempt dir the agent's private per-attempt directory (0700, the job's user's), made for
               every attempt and named to the job by ``HPCBATCH_ATTEMPT_DIR``.
    enterable  every directory on the (symlink-resolved) path grants search (x) to the job's
               user by its mode bits: owner bits if the user owns it, else group bits if the
               user is in its group, else other bits (POSIX's one class). ACLs are not read
               here: the fork child's own chdir as the user remains the last word.
Each problem is a ``CannotStartContainerError`` reason naming the directory and the host.
Standard library only.
"""

from __future__ import annotations

import os
import stat

from .users import RunAs

ATTEMPT_DIR_VAR = "HPCBATCH_ATTEMPT_DIR"


def cwd_problem(path: str, who: RunAs | None, host: str) -> str | None:
    """Why a job of ``who`` (None: the agent's own user) cannot start in ``path`` on
    ``host``, or None."""
    if not path.startswith("/"):
        return f"CannotStartContainerError: working directory {path} is not an absolute path"
    if not os.path.isdir(path):
        return f"CannotStartContainerError: working directory {path} does not exist on {host}"
    if who is not None and who.switch and not enterable(path, who):
        return (
            f"CannotStartContainerError: working directory {path} cannot be entered by "
            f"user {who.name} on {host}"
        )
    return None


def enterable(path: str, who: RunAs) -> bool:
    """``who`` may search every directory from / down to ``path`` (mode bits only)."""
    if who.uid == 0:
        return True
    real = os.path.realpath(path)
    prefix = ""
    for part in ["", *(p for p in real.split("/") if p)]:
        prefix = f"{prefix}/{part}" if part else "/"
        try:
            info = os.stat(prefix)
        except OSError:
            return False
        if not _may_search(info, who):
            return False
    return True


def _may_search(info: os.stat_result, who: RunAs) -> bool:
    if info.st_uid == who.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == who.gid or info.st_gid in who.groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)
