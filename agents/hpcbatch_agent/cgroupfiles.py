"""Cgroup files kept open: the files of a slot that every attempt in it reads or writes.

A cgroupfs open costs ~10 us, and a slot serves attempt after attempt, so its ``tasks``
(written to move the agent's thread in), ``pids.current`` and ``memory.oom_control`` (or
v2's ``cgroup.events`` and ``memory.events``) stay open: writes go to the kept fd, reads are
one pread at offset 0 (the kernel regenerates the text). A dir's fds are closed before it
is removed (``forget``); a write or read that fails forgets the dir, to be reopened next
time. At most a quarter of the soft RLIMIT_NOFILE is kept (which the agent leaves as it is,
since jobs inherit it): beyond that a file is opened and closed per use, as before.
Standard library only.
"""

from __future__ import annotations

import os
import resource

MAX_KEPT = 4096


def fd_budget() -> int:
    """A quarter of the soft RLIMIT_NOFILE (256 of the usual 1,024: the five files each of
    ~50 v1 slots), at most MAX_KEPT."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_KEPT
    return max(0, min(MAX_KEPT, soft // 4))


class KeptFiles:
    def __init__(self, budget: int | None = None) -> None:
        self._fds: dict[str, dict[str, int]] = {}  # dir -> name -> fd
        self._count = 0
        self._max = fd_budget() if budget is None else budget

    def _fd(self, directory: str, name: str, flags: int) -> tuple[int, bool]:
        """An fd of ``directory/name`` and whether it is kept (else the caller closes it)."""
        kept = self._fds.get(directory)
        if kept is not None and name in kept:
            return kept[name], True
        fd = os.open(f"{directory}/{name}", flags | os.O_CLOEXEC)
        if self._count >= self._max:
            return fd, False
        self._fds.setdefault(directory, {})[name] = fd
        self._count += 1
        return fd, True

    def write(self, directory: str, name: str, data: bytes) -> None:
        fd, kept = self._fd(directory, name, os.O_WRONLY)
        try:
            os.write(fd, data)
        except OSError:
            if kept:
                self.forget(directory)  # e.g. removed behind the agent's back: reopen later
            raise
        finally:
            if not kept:
                os.close(fd)

    def read(self, directory: str, name: str) -> bytes | None:
        """The first bytes of a small kernel file (one pread), or None."""
        try:
            fd, kept = self._fd(directory, name, os.O_RDONLY)
        except OSError:
            return None
        try:
            return os.pread(fd, 4096, 0)
        except OSError:
            if kept:
                self.forget(directory)
            return None
        finally:
            if not kept:
                os.close(fd)

    def forget(self, directory: str) -> None:
        """Close the dir's kept fds (before it is removed)."""
        for fd in self._fds.pop(directory, {}).values():
            os.close(fd)
            self._count -= 1
