"""File descriptors the agent inherited from whoever started it.

A foreground ``serve`` (a shell, an SSH session, a test harness) may hand the keeper and the
agent descriptors without close-on-exec; posix_spawn passes every such descriptor on to
each job. At start they are all marked close-on-exec, so jobs inherit only 0-2 (which the
spawn replaces: /dev/null and the job's log). Standard library only.
"""

from __future__ import annotations

import contextlib
import os

FD_DIRS = ("/proc/self/fd", "/dev/fd")


def close_on_exec_inherited() -> list[int]:
    """Mark every open descriptor above 2 close-on-exec; the ones that were not."""
    marked: list[int] = []
    for directory in FD_DIRS:
        try:
            names = os.listdir(directory)  # its own descriptor is closed once listed
        except OSError:
            continue
        for fd in sorted(int(name) for name in names if name.isdigit()):
            if fd > 2:
                with contextlib.suppress(OSError):  # the listing's own, closed by now
                    if os.get_inheritable(fd):
                        os.set_inheritable(fd, False)
                        marked.append(fd)
        return marked
    return marked
