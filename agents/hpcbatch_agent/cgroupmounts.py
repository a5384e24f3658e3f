"""Which cgroup hierarchies a process has: mountinfo and /proc/self/cgroup, parsed (pure).

Vocabulary:
    mount      one cgroup filesystem: v2 (``cgroup2``), or v1 with the controllers it carries.
    hierarchy  a mount the agent uses, with the controllers it enforces through it (cgroups.py
               plans them).
Golden-tested through cgroups.py, which re-exports every name here. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .cpucounters import CPUACCT

CONTROLLERS = ("memory", "cpu", "pids")
DEVICES = "devices"  # not a limit: gpudevices.py's GPU rules


@dataclass(frozen=True)
class Mount:
    """One cgroup mount from mountinfo: v2 (``cgroup2``) or v1 with its controllers."""

    path: str
    version: int
    controllers: frozenset[str]  # v1: the controllers named in the super options


@dataclass(frozen=True)
class Hierarchy:
    path: str  # the mount point; the node dir goes under it
    version: int
    controllers: tuple[str, ...]  # of CONTROLLERS, enforced through this hierarchy
    home: str = ""  # v1: the agent's own cgroup dir, once the probe moved its thread and back


def unescape_mount_path(text: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup mounts listed in /proc/self/mountinfo, in order."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) < 3:
            continue
        fstype, options = after[0], after[2].split(",")
        point = unescape_mount_path(fields[4])
        if fstype == "cgroup2":
            mounts.append(Mount(point, 2, frozenset()))
        elif fstype == "cgroup":
            kept = (*CONTROLLERS, DEVICES, CPUACCT)
            mounts.append(Mount(point, 1, frozenset(o for o in options if o in kept)))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup as {controller: path}; the v2 hierarchy's key is ""."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, names, path = parts
        for name in names.split(",") if names else [""]:
            found.setdefault(name, path)
    return found


def v2_mount(mounts: Iterable[Mount], proc_cgroup: dict[str, str]) -> Mount | None:
    """The unified hierarchy this process belongs to, if it is mounted."""
    if "" not in proc_cgroup:
        return None
    return next((m for m in mounts if m.version == 2), None)
