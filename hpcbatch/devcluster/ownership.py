"""Who can write a dev cluster's files: root alone, or ``up`` and ``down`` refuse to act.

Why: root's sshd reads its config and host keys from the cluster's directory, and ``down``
deletes (as root) what the directory's ``cluster.json`` names. A local user who could create
or change that directory (a predictable ``/tmp`` path made before ``up`` ran), or rename one
of the directories above it, would get root over SSH, or make ``down`` delete for them.

Vocabulary:
    private dir   the cluster's directory: a real directory (not a symlink), owned by root,
                  not writable by group or others. ``up`` makes it (mode 0711) when it does
                  not exist, and refuses an existing one that is not private. 0711, not 0700,
                  for the agent's reason (its state dir is 0711 too): a job running as a user
                  must reach its own work dir below it by path; nobody can list it, and what
                  is secret in it is 0600 (keys, cluster.json, each host's disk image).
    safe chain    every directory above it is owned by root and either not writable by group
                  or others, or sticky (like /tmp: others may add entries but not rename or
                  delete root's); a symlink on the way must be owned by root, and the
                  directories it leads through must be safe too.
    root file     ``cluster.json``: a regular file (not a symlink) owned by root, not writable
                  by group or others.

Every refusal names the path, its owner and its mode. The rules on a stat result are pure
(``stat_problem``); the functions that look at the filesystem are thin around them.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from hpcbatch.devcluster.errors import DevClusterError

PRIVATE_MODE = 0o711
GROUP_OR_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


def owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def describe(path: Path, st: os.stat_result) -> str:
    return f"{path} (owner {owner_name(st.st_uid)}, mode {stat.filemode(st.st_mode)})"


def stat_problem(path: Path, st: os.stat_result, kind: str) -> str | None:
    """Why an entry with stat ``st`` is not safe as ``kind``, or None.

    kind: ``"dir"`` (the private dir), ``"above"`` (a directory on the way to it),
    ``"file"`` (a root file) or ``"link"`` (a symlink on the way)."""
    if st.st_uid != 0:
        return f"{describe(path, st)} is not owned by root"
    if kind == "link":
        return None if stat.S_ISLNK(st.st_mode) else f"{describe(path, st)} is not a symlink"
    want_dir = kind in ("dir", "above")
    if want_dir and not stat.S_ISDIR(st.st_mode):
        return f"{describe(path, st)} is not a directory"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return f"{describe(path, st)} is not a regular file"
    sticky = bool(st.st_mode & stat.S_ISVTX)
    if st.st_mode & GROUP_OR_OTHER_WRITE and not (kind == "above" and sticky):
        return f"{describe(path, st)} is writable by group or others"
    return None


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def chain_problem(path: Path) -> str | None:
    """Why the directories above ``path`` (absolute) are not a safe chain, or None. Missing
    ones are fine: ``up`` makes them, owned by root."""
    for above in reversed(path.parents):  # a symlink on the way: only root may replace it
        st = _lstat(above)
        if st is None:
            break
        if stat.S_ISLNK(st.st_mode) and (problem := stat_problem(above, st, "link")):
            return problem
    real = Path(os.path.realpath(path.parent))
    for above in [*reversed(real.parents), real]:  # the directories it really goes through
        st = _lstat(above)
        if st is None:
            break
        if problem := stat_problem(above, st, "above"):
            return problem
    return None


def _refuse(problem: str, what: str) -> DevClusterError:
    return DevClusterError(
        f"{problem}: {what} (the dev cluster's sshd runs as root and reads its files there, "
        "so only root may be able to change them)"
    )


def make_private_dir(path: Path) -> bool:
    """Make ``path`` (mode 0711, owned by root) or accept an existing private dir on a safe
    chain; True when it was made here. Raises naming the path, owner and mode otherwise."""
    problem = chain_problem(path)
    if problem:
        raise _refuse(problem, f"choose a --dir that only root can reach, not {path}")
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_MODE)
    except FileExistsError:
        check_private_dir(path)
        return False
    os.chmod(path, PRIVATE_MODE)  # whatever the umask
    return True


def check_private_dir(path: Path) -> None:
    """Raise unless ``path`` is a private dir on a safe chain."""
    problem = chain_problem(path)
    st = _lstat(path)
    if problem is None and st is None:
        problem = f"{path} does not exist"
    if problem is None and st is not None:
        problem = stat_problem(path, st, "dir")
    if problem:
        raise _refuse(problem, "refusing to use it as a dev cluster's directory")


def check_root_file(path: Path) -> None:
    """Raise unless ``path`` is a root file."""
    st = _lstat(path)
    problem = f"{path} does not exist" if st is None else stat_problem(path, st, "file")
    if problem:
        raise _refuse(problem, "refusing to trust it")
