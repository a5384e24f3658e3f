"""Running a job as the user its definition names (AWS ``containerProperties.user``).

Vocabulary:
    run-as    who a job runs as: the user's uid, primary gid and every group the user is
              in (os.getgrouplist, looked up here, in the agent, never in the job's child),
              and the HOME, USER, LOGNAME the job sees.
    switch    a run-as that differs from the agent's own uid: a root agent starts such a job
              from a fork child that drops to it (forkexec.py) before it applies the job's
              environment, so nothing that runs as root ever sees that environment.

An agent that is not root can only run jobs as itself: any other user is refused at start,
never silently ignored. An empty user name is an error, never "the agent's own user".
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

EMPTY_USER = "CannotStartContainerError: user must not be empty"
NUL_USER = "CannotStartContainerError: user must not contain a NUL byte"


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups, the primary one included
    env: dict[str, str]  # HOME, USER, LOGNAME of that user
    switch: bool  # not the agent's own uid: the job's child drops to it


def run_as(user: str) -> RunAs | str:
    """How to run a job as ``user``, or a CannotStartContainerError reason."""
    if not user:
        return EMPTY_USER
    if "\0" in user:
        return NUL_USER
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return f"CannotStartContainerError: no user {user!r} on this host"
    env = {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}
    if entry.pw_uid == os.geteuid():
        return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, (), env, switch=False)
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return (
            f"CannotStartContainerError: the agent runs as {me}, not root, so it cannot run "
            f"jobs as {user!r}"
        )
    try:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    except OSError as exc:
        return f"CannotStartContainerError: cannot list the groups of user {user!r}: {exc}"
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, env, switch=True)


def run_as_cached(user: str | None, users: dict[str, RunAs | str]) -> RunAs | str | None:
    """Who a job runs as (None: the agent, no user named), or why it cannot start, looked up
    once per batch in ``users``. An empty name is an error, never the agent's own user."""
    if user is None:
        return None
    if user not in users:
        users[user] = run_as(user)
    return users[user]
