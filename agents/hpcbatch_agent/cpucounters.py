"""Which cgroup file counts the CPU time of a slot's processes, and reading its text.

Vocabulary:
    cpu counter  the slot file that counts the CPU time its processes use, dead ones
                 included: v2 ``cpu.stat`` (``usage_usec``, in every v2 group, whether the
                 cpu controller is enabled or not), else v1 ``cpuacct.usage`` (ns) of the
                 hierarchy mounted with the cpuacct controller: the cpu tree where they are
                 mounted together (``cpu,cpuacct``), else a cpuacct tree of its own, which
                 cgroups.py adds to its plan for counting alone (``cpuacct_mount_path``).
                 cpumeter.py sums what the counters of the slots gain.

Pure functions on cgroups.py's Mount and Hierarchy (seen here only through their fields),
golden-tested in tests/agent/test_cgroups.py. Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

CPUACCT = "cpuacct"  # not a limit: the v1 controller that counts CPU time
V1_CPU_COUNTER = "cpuacct.usage"
V2_CPU_COUNTER = "cpu.stat"


class _Tree(Protocol):
    @property
    def path(self) -> str: ...
    @property
    def version(self) -> int: ...


class _Mounted(_Tree, Protocol):
    @property
    def controllers(self) -> frozenset[str]: ...


def cpuacct_mount_path(
    mounts: Sequence[_Mounted], proc_cgroup: dict[str, str], plan: Sequence[_Tree]
) -> str | None:
    """The mount point of a v1 cpuacct tree to add to ``plan`` only to count CPU time, or
    None: a v2 tree of the plan counts it already (``cpu.stat``), as does a planned v1 tree
    the cpuacct controller is mounted with; or this process has no cpuacct hierarchy."""
    if any(h.version == 2 for h in plan) or CPUACCT not in proc_cgroup:
        return None
    mount = next((m for m in mounts if m.version == 1 and CPUACCT in m.controllers), None)
    if mount is None or mount.path in {h.path for h in plan}:
        return None
    return mount.path


def parse_cpu_usage_ns(name: str, data: bytes | None) -> int | None:
    """Nanoseconds of CPU from a v1 ``cpuacct.usage`` or a v2 ``cpu.stat``; None if the
    text holds no count."""
    if data is None:
        return None
    if name == V1_CPU_COUNTER:
        text = data.strip()
        return int(text) if text.isdigit() else None
    for line in data.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == b"usage_usec" and words[1].isdigit():
            return int(words[1]) * 1000
    return None


def find_cpu_counter(plan: Sequence[_Tree], node_dirs: Sequence[str]) -> tuple[int, str] | None:
    """(index in the plan, file name) of the counter the agent reads, or None: a v2 tree
    first, as it counts in every group; a v1 tree counts if cpuacct is mounted with it (its
    node dir has the file)."""
    found = [
        (index, name)
        for index, (tree, node_dir) in enumerate(zip(plan, node_dirs, strict=True))
        for name in (V2_CPU_COUNTER if tree.version == 2 else V1_CPU_COUNTER,)
        if os.path.exists(f"{node_dir}/{name}")
    ]
    return min(found, key=lambda item: plan[item[0]].version != 2, default=None)
