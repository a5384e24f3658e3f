"""Reading a process's /proc/<pid>/stat. Standard library only."""

from __future__ import annotations

import os


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields after ``pid (comm)``: [0] the state (``Z`` for a zombie), [3] the session
    id, [19] the start time in clock ticks after boot. None once the pid is gone; a zombie
    still has them."""
    try:  # os-level calls: a buffered file object costs twice as much here
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            text = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return None
    return text[text.rfind(b")") + 2 :].split()
