"""The per-attempt launch directory of a gang node's job: its launch key, hostfiles and
launcher, readable by the job's user alone.

Vocabulary:
    launch dir  ``<state dir>/launch/<safe attempt id>``, 0700, owned by the job's user: the
                key file ``launch.key`` (0400: the gang try's secret, which a launch request
                proves knowledge of; never in the environment, which users print), the
                hostfiles (0444) and ``launch``, the launcher script (0555), which execs
                this agent's launch client. Made fresh before the spawn (whatever stood at
                the path is removed first, never followed), removed when the attempt is
                acknowledged.
    reload      a restarted agent reads the key back from ``launch.key`` for an attempt it
                adopts (read_launch_key): the directory is the job user's, so the file is
                taken only if it is a regular file (never through a symlink), owned by the
                job's uid and mode 0400, as it was written.
Standard library only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from collections.abc import Mapping

from .mpienv import KEY_FILE_NAME, LAUNCHER_NAME, gang_files
from .spool import safe_name
from .wirevalues import LAUNCH_KEY_RE

LAUNCH = "launch"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def launch_dir(state_dir: str, attempt_id: str) -> str:
    return f"{state_dir}/{LAUNCH}/{safe_name(attempt_id)}"


def make_launch_dir(
    directory: str,
    key: str,
    env: Mapping[str, str],
    launcher: list[str],
    owner: tuple[int, int] | None,
) -> None:
    """Write the launch dir for a job whose environment is ``env`` (its HPCBATCH_HOSTS),
    running as ``owner`` (uid, gid; None: the agent's own user). ``launcher``: the client's
    argv prefix. Raises ValueError (bad HPCBATCH_HOSTS) or OSError."""
    files = gang_files(env)
    remove_launch_dir(directory)
    os.mkdir(directory, 0o700)
    script = "#!/bin/sh\nexec " + " ".join(shlex.quote(word) for word in launcher) + ' "$@"\n'
    entries = [(KEY_FILE_NAME, key + "\n", 0o400), (LAUNCHER_NAME, script, 0o555)]
    entries += [(name, text, 0o444) for name, text in files.items()]
    for name, text, mode in entries:
        fd = os.open(f"{directory}/{name}", _CREATE, 0o600)
        try:
            os.write(fd, text.encode())
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    if owner is not None:
        os.chown(directory, *owner, follow_symlinks=False)


def read_launch_key(directory: str, uid: int) -> bytes:
    """The key in ``directory``'s ``launch.key``, which must be a regular file owned by
    ``uid`` with mode 0400 holding 64 lowercase hex digits; OSError or ValueError (naming
    what is wrong) otherwise. Neither the directory nor the file is followed if a symlink;
    O_NONBLOCK: a FIFO in its place cannot hang the agent."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(KEY_FILE_NAME, _READ, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{KEY_FILE_NAME} is not a regular file")
        if info.st_uid != uid:
            raise ValueError(f"{KEY_FILE_NAME} is owned by uid {info.st_uid}, not {uid}")
        if stat.S_IMODE(info.st_mode) != 0o400:
            raise ValueError(f"{KEY_FILE_NAME} has mode {stat.S_IMODE(info.st_mode):o}, not 400")
        text = os.read(fd, 66).decode("ascii", errors="replace").removesuffix("\n")
    finally:
        os.close(fd)
    if not LAUNCH_KEY_RE.fullmatch(text):
        raise ValueError(f"{KEY_FILE_NAME} does not hold 64 lowercase hex digits")
    return bytes.fromhex(text)


def remove_launch_dir(directory: str) -> None:
    """Remove it and everything in it; symlinks inside are removed, never followed."""
    try:
        if os.path.islink(directory):
            os.unlink(directory)
        else:
            shutil.rmtree(directory)
    except FileNotFoundError:
        pass
