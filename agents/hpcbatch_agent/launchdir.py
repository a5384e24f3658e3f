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
Standard library only.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping

from .mpienv import KEY_FILE_NAME, LAUNCHER_NAME, gang_files
from .spool import safe_name

LAUNCH = "launch"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


def remove_launch_dir(directory: str) -> None:
    """Remove it and everything in it; symlinks inside are removed, never followed."""
    try:
        if os.path.islink(directory):
            os.unlink(directory)
        else:
            shutil.rmtree(directory)
    except FileNotFoundError:
        pass
