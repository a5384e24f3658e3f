"""Reading a process's /proc/<pid>/stat. Standard library only."""

from __future__ import annotations


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields after ``pid (comm)``: [0] the state (``Z`` for a zombie), [3] the session
    id, [19] the start time in clock ticks after boot. None once the pid is gone; a zombie
    still has them."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rfind(b")") + 2 :].split()
