"""What a node offers: vCPUs, memory, GPUs, and the cgroup enforcement cgroups.py set up.

Vocabulary:
    capacity   the NodeInfo an agent advertises in its hello.
    override   a value given on the command line (``--vcpus`` ...) that wins over detection,
               so one machine can host several virtual nodes that split it.

Parsing is done by pure functions (``parse_nvidia_smi``, ``parse_meminfo``) so the text
formats have golden tests; ``detect_node`` does the I/O. Which cgroups are enforced is
decided by cgroups.py and passed in.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .protocol import GpuInfo, NodeInfo

NVIDIA_SMI_ARGS = [
    "--query-gpu=index,uuid,name,memory.total",
    "--format=csv,noheader,nounits",
]


def _nullable(text: str) -> str | None:
    # nvidia-smi prints "[N/A]" / "[Not Supported]" for fields a board does not report.
    text = text.strip()
    return None if not text or text.startswith("[") else text


def parse_nvidia_smi(output: str) -> list[GpuInfo]:
    """Parse ``nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits``."""
    gpus: list[GpuInfo] = []
    for row in csv.reader(output.splitlines(), skipinitialspace=True):
        if not row or not row[0].strip():
            continue
        if len(row) < 4:
            raise ValueError(f"nvidia-smi row has {len(row)} fields, expected 4: {row!r}")
        memory = _nullable(row[3])
        gpus.append(
            {
                "index": int(row[0]),
                "uuid": _nullable(row[1]),
                "name": _nullable(row[2]),
                "memory_mib": int(float(memory)) if memory is not None else None,
            }
        )
    return gpus


def parse_meminfo(text: str) -> int:
    """MemTotal of /proc/meminfo, in MiB."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
            return kib // 1024
    raise ValueError("no MemTotal line in /proc/meminfo")


def _gpus_from_nvidia_smi() -> list[GpuInfo] | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        result = subprocess.run(
            [binary, *NVIDIA_SMI_ARGS], capture_output=True, text=True, timeout=20, check=True
        )
        return parse_nvidia_smi(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


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
    return {
        "name": name,
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "gpus": select_gpus(_gpus_from_nvidia_smi(), gpus),
        "cgroups": cgroups,
        "hostname": socket.gethostname(),
        "enforced": list(enforced),
    }
