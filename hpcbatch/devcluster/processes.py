"""Processes of a dev cluster: started sshds, found, stopped and waited for by pid.

PID 1 on these machines may not reap orphans, so a killed process can linger as a zombie: a
zombie counts as gone (it holds no namespace and no socket). Processes this Python process
started itself are kept in ``_children`` and reaped through their ``Popen``, which also keeps
``Popen.__del__`` from warning about a child still running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

POLL_INTERVAL = 0.005
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start a long-lived process in its own session (a Ctrl-C at the terminal that ran ``up``
    must not reach the hosts), its stdout and stderr appended to ``log``."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc


def state(pid: int) -> str | None:
    """The kernel's one-letter state of ``pid`` (``R``, ``S``, ``Z``...), None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[0]


def is_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    reap(pid)
    return state(pid) not in (None, "Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def find(predicate: Callable[[list[str]], bool]) -> list[int]:
    """Living processes whose argv satisfies ``predicate``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and predicate(cmdline(int(entry))) and is_alive(int(entry)):
            found.append(int(entry))
    return found


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child, so it does not stay a zombie."""
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def signal_all(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Poll until none of ``pids`` is alive or ``timeout`` passes; the survivors."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if is_alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        left = [pid for pid in left if is_alive(pid)]
    return left


def stop(pids: Iterable[int], grace: float = 3.0) -> list[int]:
    """SIGTERM, wait up to ``grace``, SIGKILL the rest and wait again; pids that survived even
    that (which should not happen) are returned."""
    left = sorted({pid for pid in pids if is_alive(pid)})
    signal_all(left, signal.SIGTERM)
    left = wait_gone(left, grace)
    signal_all(left, signal.SIGKILL)
    return wait_gone(left, grace)
