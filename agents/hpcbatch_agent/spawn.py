"""Starting job processes: where they run, in which cgroups, as whom, with what they inherit.

Vocabulary:
    job       started in a new session, so killpg reaches its whole tree and nothing
              reaches it when the agent or the head dies; with default signal dispositions,
              an empty signal mask, and no fd of the agent's but 0-2 (stdin /dev/null,
              stdout and stderr its log, opened with O_NOFOLLOW and created 0600).
    fast path a job with no root stage (it runs as the agent's own user and joins no
              cgroup from inside): posix_spawn (vfork + exec) straight to the job's program.
    fork path a job with a root stage (another user, or ``cgroup.procs`` to join): started
              from a fork child that does that work as agent code and only then execs the
              job with its environment (forkexec.py).
    joining   v1: the calling (agent's single) thread steps into the slot's ``tasks`` before
              the spawn, so the child starts inside, and steps on into the next job's slot
              or home; v2 (or ``serve --cgroup-join shim``): the job's first process, the
              fork child, writes itself into the slot's ``cgroup.procs`` before its exec.
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
from .forkexec import (
    CATCHABLE,
    LOG_FLAGS,
    LOG_MODE,
    SH,
    exec_failure,
    fork_exec,
    handled_signals,
)
from .slots import Slot
from .users import RunAs


@dataclass
class SpawnRequest:
    """One job, ready to start: what runs, with what, where, inside which slot, as whom."""

    program: str  # the file to execute (resolved)
    command: list[str]
    env: dict[str, str]
    cwd: str
    log_path: str
    slot: Slot | None
    user: RunAs | None = None  # another user to switch to (None: the agent's own)
    cwd_made: bool = False  # cwd is the agent's work dir for it: entered before the switch
    stdio: tuple[int, int, int] | None = None  # 0-2 from these fds, not the log (launches)

    @property
    def has_root_stage(self) -> bool:
        return self.user is not None or bool(self.slot is not None and self.slot.joins)


def spawn_jobs(
    requests: list[SpawnRequest], cgroups: Cgroups, home_dir: str
) -> list[tuple[int, int] | str]:
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
    pids: list[tuple[int, int] | str] = []
    handled = handled_signals()
    inside = False  # the thread is in some slot's v1 cgroups
    try:
        for request in requests:
            slot = request.slot
            try:
                if slot is not None and slot.enter:
                    inside = True
                    cgroups.enter(slot.enter)  # on OSError it is home again
                elif inside:  # a job of no v1 slot must not start in the last one's
                    cgroups.leave()  # on OSError the job fails, and leaving is tried again
                    inside = False
            except OSError as exc:  # ``inside`` may now be True at home: leaving is harmless
                pids.append(f"cannot join the job's cgroups: {exc}")
                continue
            outcome = fork_exec(request, handled) if request.has_root_stage else _spawn(request)
            pids.append(outcome if isinstance(outcome, str) else (outcome, _now_ms()))
    finally:
        os.chdir(home_dir)
        if inside:
            try:
                cgroups.leave()
            except OSError as exc:  # the jobs run: they must be tracked whatever happens here
                print(f"agent: cannot leave the cgroups of its jobs: {exc}", file=sys.stderr)
    return pids


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _spawn(request: SpawnRequest) -> int | str:
    """The fast path: the job's pid, or why it could not start."""
    try:
        os.chdir(request.cwd)
    except OSError as exc:
        return f"cannot enter the working directory {request.cwd}: {exc.strerror}"
    try:
        return _posix_spawn(request.program, request.command, request.env, _file_actions(request))
    except OSError as exc:  # the child's open of the log, or its exec
        if os.path.islink(request.log_path):
            return f"cannot open the log {request.log_path}: {os.strerror(errno.ELOOP)}"
        return exec_failure(request.command[0], exc.errno or 0)


def _file_actions(request: SpawnRequest) -> list[Any]:
    if request.stdio is not None:
        return [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(request.stdio)]
    return [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, request.log_path, LOG_FLAGS & ~os.O_CLOEXEC, LOG_MODE),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]


def resolve_cached(
    program: str,
    cwd: str,
    path: str,
    cache: dict[tuple[str, str, str], tuple[str | None, str | None]],
) -> tuple[str | None, str | None]:
    """resolve_program, looked up once per batch in ``cache``: keyed by the working directory
    too where it counts, a program with a '/' or a PATH with a relative or empty entry (".",
    "bin", "")."""
    relative = "/" in program or any(not d.startswith("/") for d in path.split(":"))
    key = (program, cwd if relative else "", path)
    if key not in cache:
        cache[key] = resolve_program(program, cwd, path)
    return cache[key]


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
    options: dict[str, Any] = {
        "file_actions": file_actions,
        "setsid": True,
        "setsigdef": CATCHABLE,  # what the agent ignores (SIGPIPE, SIGXFSZ) is not the job's
        "setsigmask": (),
    }
    try:
        return os.posix_spawn(program, argv, env, **options)
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise
    # A script without a "#!" line: run by the shell, as execvp does.
    return os.posix_spawn(SH, [SH, program, *argv[1:]], env, **options)
