"""Reading small kernel files: a process's /proc/<pid>/stat, a cgroup counter. Standard
library only."""

from __future__ import annotations

import os


def read_head(path: str) -> bytes | None:
    """The first bytes of a small kernel file (a stat line, a counter, an events list): one
    read with os-level calls (a buffered file object costs twice as much); None if it
    cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields after ``pid (comm)``: [0] the state (``Z`` for a zombie), [3] the session
    id, [19] the start time in clock ticks after boot. None once the pid is gone; a zombie
    still has them."""
    text = read_head(f"/proc/{pid}/stat")
    if text is None:
        return None
    return text[text.rfind(b")") + 2 :].split()
