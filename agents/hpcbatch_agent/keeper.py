"""The keeper: the agent's parent, which outlives it and records how its orphaned jobs end.

Vocabulary:
    keeper       the process ``serve`` runs as. It makes itself a child subreaper, forks the
                 agent, and from then on only waits. Jobs are the agent's own children (it
                 spawns them directly: no shell per job); if the agent dies, even by
                 SIGKILL, the kernel hands its jobs to the keeper, which writes each one's
                 end to a reaped file before it reaps it. So a job that finishes while no
                 agent runs still leaves its true exit status behind. The keeper holds no
                 lock and no socket: a restarted agent comes with a keeper of its own while
                 the old one waits on for the jobs it inherited. It leaves once it has no
                 child at all, with the agent's exit status. It ignores SIGTERM, SIGINT and
                 SIGHUP: stop the agent (agent.pid) instead. A job's file is written
                 before the job is reaped, so once its pid is gone the file is there.
    reaped file  ``<state dir>/reaped/<pid>``: ``<wait status> <start ticks> <stop ms>``,
                 written whole (tmp + rename). ``start ticks`` is the process's start time
                 from /proc/<pid>/stat, which the agent also journals at spawn, so a
                 reused pid is never mistaken for the job.
    start ticks  field 22 of /proc/<pid>/stat: clock ticks after boot; with the pid, it
                 names one process for the machine's uptime.

Standard library only (ctypes for prctl; without it the agent runs unkept, see ``run``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .procfs import stat_fields

PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
REAPED = "reaped"


def _prctl(option: int, arg: int | bytes) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, arg, 0, 0, 0) == 0)
    except (ImportError, OSError, AttributeError):
        return False


def make_subreaper() -> bool:
    """Orphaned descendants of this process become its children, not init's."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (also for a zombie)."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[19])


def reaped_path(state_dir: Path | str, pid: int) -> str:
    return f"{state_dir}/{REAPED}/{pid}"


def read_reaped(state_dir: Path | str, pid: int, ticks: int | None) -> tuple[int, int] | None:
    """(wait status, stop ms) the keeper recorded for this process, or None. With ``ticks``
    None (the start time was never journaled) any record of the pid is taken."""
    try:  # never through a symlink: only the keeper's own file counts
        fd = os.open(reaped_path(state_dir, pid), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb") as reaped:
            words = reaped.read(100).split()
    except OSError:
        return None
    if len(words) != 3 or not all(w.lstrip(b"-").isdigit() for w in words):
        return None
    status, start, stop = (int(w) for w in words)
    if ticks is not None and start != ticks:
        return None  # an earlier process with the same pid
    return status, stop


def _record(directory: str, pid: int, status: int, ticks: int | None) -> None:
    path = f"{directory}/{pid}"
    tmp = f"{path}.tmp"
    stop_ms = time.time_ns() // 1_000_000
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with open(os.open(tmp, flags, 0o600), "w", encoding="ascii") as out:
        out.write(f"{status} {ticks if ticks is not None else -1} {stop_ms}\n")
    os.replace(tmp, path)


def wait_status(info: os.waitid_result) -> int:
    """The wait status that waitpid would return, from waitid's report."""
    if info.si_code == os.CLD_EXITED:
        return (info.si_status & 0xFF) << 8
    core = 0x80 if info.si_code == os.CLD_DUMPED else 0
    return (info.si_status & 0x7F) | core


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def keep(directory: str, agent_pid: int) -> int:
    """Reap children until none is left; record every one but the agent. The agent's code."""
    agent_code = 1
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            return agent_code
        if info is None:
            continue
        pid = info.si_pid
        if pid == agent_pid:
            agent_code = _exit_code(os.waitpid(pid, 0)[1])
            continue
        ticks = start_ticks(pid)  # still readable: the zombie is not reaped yet
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # what the job left in its group, as the agent does
        try:  # recorded before the reap: a job that is gone has its file (see the runner)
            _record(directory, pid, wait_status(info), ticks)
        except OSError as exc:
            print(f"keeper: cannot record the end of {pid}: {exc}", file=sys.stderr, flush=True)
        os.waitpid(pid, 0)


def _run_child(agent_main: Callable[[], int]) -> int:
    """The agent's exit code in the forked child; whatever it raises is printed first (the
    caller's os._exit skips the interpreter's own report)."""
    code = 1
    try:
        code = agent_main()
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
    return code


def run(state_dir: Path, agent_main: Callable[[], int]) -> int:
    """Run ``agent_main`` in a child kept by this process; the agent's exit code.

    Where this process cannot become a subreaper (no ctypes, no prctl), the agent runs
    here, unkept: its jobs then lose their exit status if the agent itself is killed."""
    directory = str(state_dir / REAPED)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if not make_subreaper():
        print("keeper: no child subreaper here; running the agent unkept", file=sys.stderr)
        return agent_main()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os._exit(_run_child(agent_main))
    _prctl(PR_SET_NAME, b"hpcbatch-keeper")
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    return keep(directory, pid)
