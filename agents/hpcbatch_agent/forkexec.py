"""Starting a job whose first process has work to do as root before it becomes the job.

Vocabulary:
    root stage  what runs in the job's process before the job's own program: joining the
                slot's cgroups through ``cgroup.procs`` (v2, or ``serve --cgroup-join
                shim``), opening the log and handing it to the user, dropping to the job's
                user. It runs here, in a fork child of the agent, as agent code: no
                program is executed before the job's own, so nothing that runs as root
                ever sees the job's environment (no ``LD_PRELOAD``, no ``BASH_FUNC_*``);
                that environment is applied only by the final execve, after the drop.
    report      a CLOEXEC pipe from the child: EOF alone means the execve succeeded;
                otherwise the child writes ``<step>\\0<errno>`` and exits 127, and the
                agent turns the step into a FAILED_TO_START reason.

The child, in order: setsid; write "0" to each ``cgroup.procs`` of the slot; enter the
working directory if the agent made it (an attempt's work dir, below the root-only state
dir); stdin /dev/null, stdout and stderr the log (O_NOFOLLOW, 0600, owned by the job's
user); default signal dispositions; close every fd above 2; setgroups, setgid, setuid, and
check that setuid(0) now fails; enter a working directory the job named, as the job's user
(root may enter directories the user may not); an empty signal mask; execve (a script
without "#!" is run by /bin/sh, as execvp does). Every signal the agent handles stays
blocked from before the fork until its disposition is the default again, so no handler of
the agent's runs in the child. The agent is single-threaded, so the fork is safe.
Standard library only.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from .spawn import SpawnRequest

SH = "/bin/sh"
CATCHABLE = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
LOG_MODE = 0o600
FAILED_EXEC = 127
_FD_LIMIT = 1 << 30  # close_range takes any bound; a fallback loop would stop at the last fd


def handled_signals() -> tuple[int, ...]:
    """The signals whose disposition is not the default here (handled or ignored): the
    child blocks and resets these (a handful: resetting all ~60 would cost ~0.4 ms a job,
    and blocking them all ~0.3 ms in the agent, which reads back the old mask as enums)."""
    return tuple(s for s in sorted(CATCHABLE) if signal.getsignal(s) is not signal.SIG_DFL)


def fork_exec(request: SpawnRequest, handled: tuple[int, ...]) -> int | str:
    """Start the job: its pid, or why it could not start (naming the step that failed).
    ``handled``: handled_signals(), looked up once per batch."""
    read_fd, write_fd = os.pipe()  # both close-on-exec
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        pid = os.fork()
        if pid == 0:
            _child(request, write_fd, handled)
    except OSError as exc:
        os.close(read_fd)
        return f"cannot fork: {exc.strerror}"
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(write_fd)
    try:
        report = _read_all(read_fd)
    finally:
        os.close(read_fd)
    if not report:
        return pid
    os.waitpid(pid, 0)  # it exits right after its report
    step, _, number = report.partition(b"\0")
    return failure_reason(request, step.decode("ascii", "replace"), int(number or b"0"))


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 256):
        chunks.append(chunk)
    return b"".join(chunks)


def failure_reason(request: SpawnRequest, step: str, code: int) -> str:
    """The reason for a child's report that ``step`` failed with errno ``code``."""
    why = os.strerror(code) if code else "failed"
    user = request.user.name if request.user is not None else ""
    if step.startswith("join "):
        joins = request.slot.joins if request.slot is not None else []
        index = int(step[5:])
        target = joins[index] if 0 <= index < len(joins) else "?"
        return f"cannot join cgroup {target}: {why}"
    if step == "exec":
        return exec_failure(request.command[0], code)
    fixed = {
        "session": "cannot start a new session",
        "cwd": f"cannot enter the working directory {request.cwd}",
        "cwd as user": f"cannot enter the working directory {request.cwd} as {user}",
        "log": f"cannot open the log {request.log_path}",
        "signals": "cannot reset the signal handlers",
        "fds": "cannot close the agent's files",
        "user": f"cannot switch to user {user}",
        "drop": f"cannot switch to user {user}: setuid(0) still succeeds after the switch",
    }
    if step == "drop":
        return fixed[step]
    return f"{fixed.get(step, f'cannot start ({step})')}: {why}"


def exec_failure(program: str, code: int) -> str:
    if code == errno.ENOENT:
        return f"command not found: {program}"
    if code == errno.EACCES:
        return f"command not executable: {program}"
    return f"cannot execute {program}: {os.strerror(code)}"


def _child(request: SpawnRequest, report_fd: int, handled: tuple[int, ...]) -> NoReturn:
    step = "session"
    try:
        os.setsid()
        for index, path in enumerate(request.slot.joins if request.slot is not None else ()):
            step = f"join {index}"
            _write_file(path, b"0")
        user = request.user
        if user is None or request.cwd_made:
            step = "cwd"
            os.chdir(request.cwd)
        step = "log"
        if request.stdio is not None:  # a launched command: its stdio is the relay's
            for target, fd in enumerate(request.stdio):
                os.dup2(fd, target)
        else:
            _stdio(request.log_path, user.uid if user else -1, user.gid if user else -1)
        step = "signals"
        for signum in handled:
            signal.signal(signum, signal.SIG_DFL)
        step = "fds"
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, _FD_LIMIT)
        if user is not None:
            step = "user"
            os.setgroups(list(user.groups))
            os.setgid(user.gid)
            os.setuid(user.uid)
            step = "drop"
            if _can_become_root():
                _report(report_fd, step, 0)
            if not request.cwd_made:
                step = "cwd as user"
                os.chdir(request.cwd)
        step = "exec"
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        _exec(request.program, request.command, request.env)
    except OSError as exc:
        _report(report_fd, step, exc.errno or 0)
    finally:  # anything else: never back into the agent's code
        _report(report_fd, step, 0)


def _write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _stdio(log_path: str, uid: int, gid: int) -> None:
    """stdin /dev/null; stdout and stderr the log, never through a symlink, owned by the
    job's user (uid -1: the agent's own)."""
    log = os.open(log_path, LOG_FLAGS, LOG_MODE)
    if uid != -1:
        os.fchown(log, uid, gid)
    _install(log, 1)
    _install(log, 2)
    if log > 2:
        os.close(log)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    _install(null, 0)
    if null > 2:
        os.close(null)


def _install(fd: int, target: int) -> None:
    if fd == target:
        os.set_inheritable(fd, True)
    else:
        os.dup2(fd, target)  # the copy is inheritable


def _can_become_root() -> bool:
    try:
        os.setuid(0)
    except PermissionError:
        return False
    return True


def _exec(program: str, argv: list[str], env: dict[str, str]) -> None:
    try:
        os.execve(program, argv, env)
    except OSError as exc:
        if exc.errno != errno.ENOEXEC:
            raise
    os.execve(SH, [SH, program, *argv[1:]], env)  # a script without "#!": as execvp does


def _report(fd: int, step: str, code: int) -> NoReturn:
    try:
        os.write(fd, f"{step}\0{code}".encode())
    finally:
        os._exit(FAILED_EXEC)
