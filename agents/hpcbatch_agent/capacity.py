"""What a node offers: vCPUs, memory, GPUs, and the cgroup enforcement cgroups.py set up.

Vocabulary:
    capacity   the NodeInfo an agent advertises in its hello.
    override   a value given on the command line (``--vcpus`` ...) that wins over detection,
               so one machine can host several virtual nodes that split it.
    configured the GPUs ``--gpus`` names (indices and/or UUIDs): the node's share of the
               machine's boards. ``select_gpus`` offers those nvidia-smi lists, and names the
               others in the reason; without an inventory it offers them as given.

Parsing is done by pure functions (``parse_meminfo`` here, ``parse_nvidia_smi`` in gpus.py)
so the text formats have golden tests; ``detect_node`` does the I/O. Which cgroups are enforced is
decided by cgroups.py and passed in, and so is how the node keeps jobs off each other's GPUs
(gpudevices.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

from .gpudevices import GpuIsolation
from .gpus import GpuDetection, detect_gpus, parse_nvidia_smi
from .protocol import GpuInfo, NodeInfo

__all__ = ["detect_node", "parse_meminfo", "parse_nvidia_smi", "select_gpus"]

Configured = Sequence[int | str]
ENV_ONLY = GpuIsolation("env")


def parse_meminfo(text: str) -> int:
    """MemTotal of /proc/meminfo, in MiB."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
            return kib // 1024
    raise ValueError("no MemTotal line in /proc/meminfo")


def _listing(gpus: list[GpuInfo]) -> str:
    names = [f"{g['index']} {g['uuid']}" if g["uuid"] else str(g["index"]) for g in gpus]
    return ", ".join(names) or "no GPUs"


def _matches(gpu: GpuInfo, item: int | str) -> bool:
    return gpu["index"] == item if isinstance(item, int) else gpu["uuid"] == item


def select_gpus(detected: GpuDetection, requested: Configured | None) -> GpuDetection:
    """The GPUs the node offers and why some it should are not there.

    Not configured: all that nvidia-smi listed, with its reason. Configured, and nvidia-smi
    ran and parsed: those of the configured it lists (an int is an index, a str a UUID), each
    other one named in the reason beside what nvidia-smi does list. Configured, with no
    inventory: the configured ones as given (a UUID's index is its position in the list),
    with the detection's reason."""
    if requested is None:
        return detected
    if detected.reason is not None:
        return GpuDetection(
            [_as_given(item, at) for at, item in enumerate(requested)], detected.reason
        )
    offered: list[GpuInfo] = []
    problems: list[str] = []
    for item in requested:
        gpu = next((g for g in detected.gpus if _matches(g, item)), None)
        if gpu is None:
            listing = _listing(detected.gpus)
            problems.append(
                f"configured GPU {item} is not on this host (nvidia-smi lists {listing})"
            )
        elif gpu in offered:
            problems.append(f"configured GPU {item} is GPU {gpu['index']} again: offered once")
        else:
            offered.append(gpu)
    return GpuDetection(offered, "; ".join(problems) or None)


def _as_given(item: int | str, position: int) -> GpuInfo:
    if isinstance(item, int):
        return {"index": item, "uuid": None, "name": None, "memory_mib": None}
    return {"index": position, "uuid": item, "name": None, "memory_mib": None}


def detect_node(
    name: str,
    *,
    vcpus: int | None = None,
    memory_mib: int | None = None,
    gpus: GpuDetection | None = None,
    cgroups: str = "none",
    enforced: Sequence[str] = (),
    isolation: GpuIsolation = ENV_ONLY,
) -> NodeInfo:
    """The hello's node. ``gpus``: the GPUs it offers (select_gpus; None: all of nvidia-smi's);
    ``cgroups``/``enforced``: what is enforced (see cgroups.py); ``isolation``: gpudevices.py."""
    if vcpus is None:
        vcpus = len(os.sched_getaffinity(0))
    if memory_mib is None:
        memory_mib = parse_meminfo(Path("/proc/meminfo").read_text())
    if gpus is None:
        gpus = detect_gpus()
    node: NodeInfo = {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "gpus": gpus.gpus,
        "cgroups": cgroups,
        "hostname": socket.gethostname(),
        "enforced": list(enforced),
        "gpu_isolation": isolation.mode,
    }
    if gpus.reason is not None:
        node["gpus_reason"] = gpus.reason
    if isolation.reason is not None:
        node["gpu_isolation_reason"] = isolation.reason
    return node
