"""Starting job processes: where they run, in which cgroups, with what they inherit.

Vocabulary:
    job       spawned with posix_spawn (vfork + exec) in a new session, so killpg reaches its
              whole tree and nothing reaches it when the agent or the head dies.
    joining   v1: the calling (agent's single) thread steps into the slot's ``tasks`` before
              the spawn, so the child starts inside, and steps on into the next job's slot
              or home; v2 (or ``serve --cgroup-join shim``): the job's first process is
              JOIN_SHIM, which joins through ``cgroup.procs`` and execs the command.
Standard library only.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from dataclasses import dataclass
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


@dataclass
class SpawnRequest:
    """One job, ready to start: what runs, with what, where, inside which slot."""

    program: str  # the file to execute (resolved)
    command: list[str]
    env: dict[str, str]
    cwd: str
    log_path: str
    slot: Slot | None


def spawn_jobs(
    requests: list[SpawnRequest], cgroups: Cgroups, home_dir: str
) -> list[tuple[int, int] | OSError]:
    """Start each job: (its pid, when in ms since the epoch), or why it could not start. Each
    runs in its own session, in its ``cwd``, stdout and stderr appended to its ``log_path``,
    inside its slot's cgroups.

    The jobs inherit this thread's working directory and (v1) cgroups at the spawn; the
    agent is single-threaded, so nothing else runs meanwhile. Between two spawns the thread
    steps from one slot straight into the next, and back home once at the end: three moves
    per job rather than six (the cpu hierarchy's moves also reschedule). The caller does
    everything that allocates before and after: between spawns only the spawns run, so
    nothing of the agent's is charged to a job's cgroups. The working directory is
    ``home_dir`` again when this returns."""
    pids: list[tuple[int, int] | OSError] = []
    inside = False  # the thread is in some slot's v1 cgroups
    try:
        for request in requests:
            slot = request.slot
            try:
                os.chdir(request.cwd)
                if slot is not None and slot.enter:
                    inside = True
                    cgroups.enter(slot.enter)  # on OSError it is home again
                elif inside:  # a job of no v1 slot must not start in the last one's
                    cgroups.leave()  # on OSError the job fails, and leaving is tried again
                    inside = False
                program, argv = request.program, request.command
                if slot is not None and slot.joins:  # v2: the job's first process joins
                    argv = [SH, "-c", JOIN_SHIM, JOIN_TAG, *slot.joins, "--", *argv]
                    program = SH
                pid = _posix_spawn(program, argv, request.env, _file_actions(request.log_path))
                pids.append((pid, time.time_ns() // 1_000_000))
            except OSError as exc:  # ``inside`` may now be True at home: leaving is harmless
                pids.append(exc)
    finally:
        os.chdir(home_dir)
        if inside:
            try:
                cgroups.leave()
            except OSError as exc:  # the jobs run: they must be tracked whatever happens here
                print(f"agent: cannot leave the cgroups of its jobs: {exc}", file=sys.stderr)
    return pids


def _file_actions(log_path: str) -> list[Any]:
    return [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]


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
