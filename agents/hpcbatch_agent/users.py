"""Running a job as the user its definition names (AWS ``containerProperties.user``).

The agent, as root, wraps the job's command in ``setpriv --reuid --regid --init-groups`` so the
job and all it starts run as that user with that user's groups; the agent that spawns it
stays root, so it can still place it in its cgroups and reap it. An agent that is not root can
only run jobs as itself: any other user is refused at start, never silently ignored.
"""

from __future__ import annotations

import os
import pwd
import shutil
from dataclasses import dataclass


@dataclass(frozen=True)
class RunAs:
    prefix: list[str]  # argv put before the job's command
    env: dict[str, str]  # HOME, USER, LOGNAME of that user
    uid: int
    gid: int


def run_as(user: str) -> RunAs | str:
    """How to run a job as ``user``, or a CannotStartContainerError reason."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return f"CannotStartContainerError: no user {user!r} on this host"
    env = {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}
    if entry.pw_uid == os.geteuid():
        return RunAs([], env, entry.pw_uid, entry.pw_gid)
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return (
            f"CannotStartContainerError: the agent runs as {me}, not root, so it cannot run "
            f"jobs as {user!r}"
        )
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    if not os.access(setpriv, os.X_OK):
        return "CannotStartContainerError: setpriv (util-linux) is needed to run jobs as a user"
    prefix = [
        setpriv,
        "--reuid",
        str(entry.pw_uid),
        "--regid",
        str(entry.pw_gid),
        "--init-groups",
        "--",
    ]
    return RunAs(prefix, env, entry.pw_uid, entry.pw_gid)
