"""What a node offers: vCPUs, memory, GPUs, and the cgroup enforcement cgroups.py set up.

Vocabulary:
    capacity   the NodeInfo an agent advertises in its hello.
    override   a value given on the command line (``--vcpus`` ...) that wins over detection,
               so one machine can host several virtual nodes that split it.

Parsing is done by pure functions (``parse_meminfo`` here, ``parse_nvidia_smi`` in gpus.py)
so the text formats have golden tests; ``detect_node`` does the I/O. Which cgroups are enforced is
decided by cgroups.py and passed in.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

from .gpus import detect_gpus, parse_nvidia_smi
from .protocol import GpuInfo, NodeInfo

__all__ = ["detect_node", "parse_meminfo", "parse_nvidia_smi", "select_gpus"]


def parse_meminfo(text: str) -> int:
    """MemTotal of /proc/meminfo, in MiB."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
            return kib // 1024
    raise ValueError("no MemTotal line in /proc/meminfo")


def select_gpus(detected: list[GpuInfo] | None, requested: Sequence[int] | None) -> list[GpuInfo]:
    """``--gpus`` wins (virtual nodes split one machine's boards); detected details fill in."""
    if requested is None:
        return detected or []
    known = {gpu["index"]: gpu for gpu in detected or []}
    return [
        known.get(index, {"index": index, "uuid": None, "name": None, "memory_mib": None})
        for index in requested
    ]


def detect_node(
    name: str,
    *,
    vcpus: int | None = None,
    memory_mib: int | None = None,
    gpus: Sequence[int] | None = None,
    cgroups: str = "none",
    enforced: Sequence[str] = (),
) -> NodeInfo:
    """The hello's node. ``cgroups``/``enforced``: what is enforced (see cgroups.py)."""
    if vcpus is None:
        vcpus = len(os.sched_getaffinity(0))
    if memory_mib is None:
        memory_mib = parse_meminfo(Path("/proc/meminfo").read_text())
    detection = detect_gpus()
    node: NodeInfo = {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "gpus": select_gpus(detection.gpus, gpus),
        "cgroups": cgroups,
        "hostname": socket.gethostname(),
        "enforced": list(enforced),
    }
    if detection.reason is not None:
        node["gpus_reason"] = detection.reason
    return node
