"""Finding the job wrappers of a state dir among the host's processes, after an agent restart.

Vocabulary (see runner.py for the wrapper itself): a wrapper is recognised by its argv
(``sh -c WRAPPER hpcbatch-job <status file> <cwd> <cgroup files...> -- <command...>``) and by
leading its own session, which excludes the forked job child in the instant before it
execs. Everything here reads /proc only. Standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

WRAPPER_TAG = "hpcbatch-job"


def _proc_session_and_state(pid: int) -> tuple[int, str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[3]), fields[0]


def _wrapper_cmdline(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().split(b"\0")
    except OSError:
        return None


def wrapper_alive(pid: int, status_path: str) -> bool:
    argv = _wrapper_cmdline(pid)
    info = _proc_session_and_state(pid)
    return (
        argv is not None
        and len(argv) > 4
        and argv[4] == status_path.encode()
        and info is not None
        and info[1] != "Z"
    )


def find_wrappers(status_dir: Path) -> dict[str, int]:
    """status_path -> pid of every live wrapper writing into ``status_dir``."""
    prefix = str(status_dir).encode() + b"/"
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        argv = _wrapper_cmdline(pid)
        if not argv or len(argv) < 6 or argv[3] != WRAPPER_TAG.encode():
            continue
        if not argv[4].startswith(prefix):
            continue
        info = _proc_session_and_state(pid)
        if info is not None and info[0] == pid and info[1] != "Z":
            found[argv[4].decode()] = pid
    return found


def wrapper_cgroups(pid: int) -> list[str]:
    """The cgroup dirs a live wrapper joined: the dirs of the files its argv names."""
    argv = _wrapper_cmdline(pid)
    if not argv or b"--" not in argv[6:]:
        return []
    joins = argv[6 : argv.index(b"--", 6)]
    return [os.path.dirname(os.fsdecode(path)) for path in joins]
