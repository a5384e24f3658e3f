"""Starting one job process: where it runs, in which cgroups, with what it inherits.

Vocabulary:
    job       spawned with posix_spawn (vfork + exec) in a new session, so killpg reaches its
              whole tree and nothing reaches it when the agent or the head dies.
    joining   v1: the calling (agent's single) thread steps into the slot's ``tasks`` around
              the spawn, so the child starts inside; v2 (or ``serve --cgroup-join shim``): the
              job's first process is JOIN_SHIM, which joins through ``cgroup.procs`` and execs
              the command.
Standard library only.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

from .cgroups import Cgroups
from .slots import Slot

SH = "/bin/sh"
# v2 (or serve --cgroup-join shim): $1.. the cgroup.procs files to join, "--", then the
# command. "echo 0" (0 = the writer itself) is a builtin, so the job's first process joins
# before it execs the command.
JOIN_SHIM = """while [ "$1" != -- ]; do
  echo 0 >"$1" || { echo "hpcbatch: cannot join the job's cgroup $1" >&2; exit 125; }
  shift
done
shift
exec "$@"
"""
JOIN_TAG = "hpcbatch-join"


def spawn_job(
    program: str,
    command: list[str],
    env: dict[str, str],
    cwd: str,
    log_path: str,
    slot: Slot | None,
    cgroups: Cgroups,
    home_dir: str,
) -> int:
    """Start a job (its pid): in its own session, in ``cwd``, stdout and stderr appended to
    ``log_path``, inside ``slot``'s cgroups; the caller's cwd is ``home_dir`` again after."""
    argv = command
    if slot is not None and slot.joins:  # v2: the job's first process joins itself
        argv = [SH, "-c", JOIN_SHIM, JOIN_TAG, *slot.joins, "--", *command]
        program = SH
    file_actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    # The job inherits this thread's working directory and (v1) cgroups at the spawn;
    # the agent is single-threaded, so nothing else runs meanwhile.
    enter = slot.enter if slot is not None else []
    os.chdir(cwd)
    try:
        if enter:
            cgroups.enter(enter)
        try:
            # setsid: the job tree gets its own session and process group, so killpg
            # reaches all of it and nothing reaches it when the agent or the head dies.
            pid = _posix_spawn(program, argv, env, file_actions)
        except OSError:
            if enter:
                cgroups.leave()
            raise
    finally:
        os.chdir(home_dir)
    if enter:
        try:
            cgroups.leave()
        except OSError as exc:  # the job runs: it must be tracked whatever happens here
            print(f"agent: cannot leave the cgroup of job {pid}: {exc}", file=sys.stderr)
    return pid


def resolve_program(program: str, cwd: str, path: str) -> tuple[str | None, str | None]:
    """(the file execvp would run, None) or (None, why not): execvp's PATH search."""
    if "/" in program:
        candidates = [os.path.join(cwd, program)]
    else:
        candidates = [os.path.join(cwd, d or ".", program) for d in path.split(":")]
    seen_unexecutable = False
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate, None
            seen_unexecutable = True
    if seen_unexecutable:
        return None, f"CannotStartContainerError: command not executable: {program}"
    return None, f"CannotStartContainerError: command not found: {program}"


def _posix_spawn(
    program: str, argv: list[str], env: dict[str, str], file_actions: list[Any]
) -> int:
    try:
        return os.posix_spawn(program, argv, env, file_actions=file_actions, setsid=True)
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise
    # A script without a "#!" line: run by the shell, as execvp does.
    return os.posix_spawn(SH, [SH, program, *argv[1:]], env, file_actions=file_actions, setsid=True)
